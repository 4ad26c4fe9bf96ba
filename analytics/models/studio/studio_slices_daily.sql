-- Slices per studio (tenant) and UTC day they ended (issue 14), with the fallback rate: of the slices
-- completed, the share the mesh estimate answered because PrusaSlicer could not (failed, timed out,
-- disabled).
select tenant_id,
       day,
       count(*) as slices,
       sum(case when status = 'completed' then 1 else 0 end) as completed,
       sum(case when status = 'failed' then 1 else 0 end) as failed,
       sum(case when status = 'completed' and cached = 1 then 1 else 0 end) as cached,
       sum(case when status = 'completed' and fallback = 1 then 1 else 0 end) as fallbacks,
       {{ round_to('case when sum(case when status = \'completed\' then 1 else 0 end) = 0 then null else 1.0 * '
                   ~ 'sum(case when status = \'completed\' and fallback = 1 then 1 else 0 end) / '
                   ~ 'sum(case when status = \'completed\' then 1 else 0 end) end', 4) }} as fallback_rate
from {{ ref('studio_slices') }}
where {{ current_tenant() }}
group by tenant_id, day

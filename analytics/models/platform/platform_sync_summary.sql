-- For the platform's own operators: per tenant and sync stream (system), the runs, the rows of the
-- last successful sync, when it finished, how stale that is, and what is still quarantined. How stale
-- moves with the clock: the hourly job rebuilds it every hour even when no sync ran.
{{ config(meta={'storehouse': {'rebuild_every': 'hour'}}) }}

with runs as (
    select tenant_id,
           stream,
           count(*) as runs,
           sum(case when status = 'failed' then 1 else 0 end) as failed_runs,
           max(case when status = 'success' then {{ utc_ts('finished_at') }} end) as last_success_at,
           max({{ utc_ts('started_at') }}) as last_started_at
    from {{ source('warehouse', 'sync_runs') }}
    where {{ current_tenant() }}
    group by tenant_id, stream
),

last_success as (
    select r.tenant_id, r.stream, max(s.rows) as rows, max(s.rows_written) as rows_written
    from runs r
    join {{ source('warehouse', 'sync_runs') }} s
      on s.tenant_id = r.tenant_id and s.stream = r.stream and s.status = 'success'
     and {{ utc_ts('s.finished_at') }} = r.last_success_at
    group by r.tenant_id, r.stream
),

quarantined as (
    select tenant_id, stream, count(*) as quarantined
    from {{ source('operational', 'quarantine') }}
    group by tenant_id, stream
)

select r.tenant_id,
       r.stream,
       case when {{ pos_of("':'", 'r.stream') }} > 0 then substr(r.stream, {{ pos_of("':'", 'r.stream') }} + 1)
            when r.stream like 'mx\_%' escape '\' then 'mx_merchant'
            else r.stream end as system,
       r.runs,
       r.failed_runs,
       coalesce(l.rows, 0) as last_success_rows,
       coalesce(l.rows_written, 0) as last_success_rows_written,
       r.last_success_at,
       {{ hours_since('r.last_success_at') }} as hours_since_success,
       coalesce(q.quarantined, 0) as quarantined
from runs r
left join last_success l on l.tenant_id = r.tenant_id and l.stream = r.stream
left join quarantined q on q.tenant_id = r.tenant_id and q.stream = r.stream

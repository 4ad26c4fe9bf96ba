-- Every slice the studios ran (issue 14), one row per (tmp file, settings) once it ended: completed
-- (by PrusaSlicer, from the slice cache, or by the mesh estimate when the slicer failed: fallback) or
-- failed. Incremental and append-only: the hourly housekeeping deletes tmp files after 24–48 h, and
-- the slices seen before stay here (a full refresh keeps only the files still in studio_tmp_files).
{{ config(materialized='incremental', unique_key="tenant_id || '|' || tmp_file_id || '|' || settings",
          incremental_strategy='delete+insert', pre_hook="{{ drop_removed_tenants() }}") }}

with ended as (
    select f.tenant_id,
           f.id as tmp_file_id,
           coalesce({{ json_text('f.metadata', 'settings') }}, '') as settings,
           f.status,
           {{ json_flag('f.metadata', 'fallback') }} as fallback,
           {{ json_flag('f.metadata', 'cached') }} as cached,
           f.updated_at as ended_at
    from {{ source('operational', 'studio_tmp_files') }} f
    where f.status in ('completed', 'failed') and {{ current_tenant('f.tenant_id') }}
)

select e.tenant_id,
       e.tmp_file_id,
       e.settings,
       e.status,
       e.fallback,
       e.cached,
       e.ended_at,
       {{ utc_day('e.ended_at') }} as day
from ended e
{% if is_incremental() %}
where not exists (select 1 from {{ this }} s
                  where s.tenant_id = e.tenant_id and s.tmp_file_id = e.tmp_file_id and s.settings = e.settings)
{% endif %}

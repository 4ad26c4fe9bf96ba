{#- The marts carry the current tenants only: a removed tenant's synced rows stay in the warehouse
    until an operator purges them (warehouse/tenants.py), but leave every mart at the next build. -#}
{% macro current_tenant(column='tenant_id') -%}
{{ column }} in (select tenant_id from {{ source('warehouse', 'tenants') }})
{%- endmacro %}

{#- Pre-hook of the incremental models: drop the rows of tenants removed since the last build
    (a full build filters them at the source). It reads the whole model, so the hourly job
    (assets/marts.py) sets STOREHOUSE_PRUNE_REMOVED_TENANTS=false when the tenants table has not
    changed since the models' last build (an environment variable read at run time: a var would
    make dbt parse the project anew); a plain `dbt` run always prunes. -#}
{% macro drop_removed_tenants() -%}
{%- if is_incremental() and env_var('STOREHOUSE_PRUNE_REMOVED_TENANTS', 'true') != 'false' -%}
delete from {{ this }} where not {{ current_tenant('tenant_id') }}
{%- else -%}
select 1
{%- endif -%}
{%- endmacro %}

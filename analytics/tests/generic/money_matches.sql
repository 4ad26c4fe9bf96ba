{#- A reconciliation: per current tenant, a model's money column adds up to the same total as an
    expression over a source (both summed exactly, compared to the cent's hundredth).

    An incremental model names `since` (its day or month column) and `source_since` (the source's
    column of the same time: a timestamp when `source_since_is_time`): when the test reads only the
    rows of this build (its where config `__this_build__`, macros/builds.sql), each rebuilt tenant's
    rows from its earliest rebuilt day (or month) onwards are reconciled with the source's rows of
    that tenant from that day on, read through the source's (tenant_id, time) index; the tenants and
    days the build left alone are not read.

    A full-table mart over a live source (orders, provisioning attempts) names `cutoff`, its column
    holding the time its build read the source up to (macros/portable.sql, `build_cutoff`), and
    `source_times`, the source's time columns that must all be at or before it for a row to count
    (a null one: not counted): the rows written between the model's build and this test are left
    out on both sides, those written before it are all reconciled. -#}
{% test money_matches(model, column_name, source_relation, source_expression, source_filter='1 = 1',
                      since=none, source_since=none, source_since_is_time=false, cutoff=none, source_times=[]) %}
{%- if since and tests_this_build_only() %}
with mart as (
    select tenant_id, min({{ since }}) as since, {{ money_sum(column_name) }} as total
    from {{ model }}
    group by tenant_id
),
src as (
    select s.tenant_id, {{ money_sum(source_expression) }} as total
    from mart
    {{ rows_since(source_relation, 's', 'mart', source_since,
                  utc_day_start('mart.since') if source_since_is_time else 'mart.since') }}
    where ({{ source_filter }}) and {{ current_tenant('s.tenant_id') }}
    group by s.tenant_id
)
select mart.tenant_id, mart.total as mart_total, src.total as source_total
from mart
left join src on src.tenant_id = mart.tenant_id
where abs(mart.total - coalesce(src.total, 0)) > 0.0001
{%- else %}
with mart as (
    select tenant_id, {{ money_sum(column_name) }} as total
    from {{ model }}
    group by tenant_id
),
{%- if cutoff %}
cut as (  {#- an empty mart recorded none: the source up to now #}
    select coalesce(max({{ cutoff }}), {{ build_cutoff() }}) as at
    from {{ model }}
),
{%- endif %}
src as (
    select tenant_id, {{ money_sum(source_expression) }} as total
    from {{ source_relation }}
    {%- if cutoff %}
    cross join cut
    {%- endif %}
    where ({{ source_filter }}) and {{ current_tenant() }}
    {%- for time in source_times %}
      and {{ utc_ts(time) }} <= cut.at
    {%- endfor %}
    group by tenant_id
)
select coalesce(mart.tenant_id, src.tenant_id) as tenant_id, mart.total as mart_total, src.total as source_total
from mart
full outer join src on src.tenant_id = mart.tenant_id
where abs(coalesce(mart.total, 0) - coalesce(src.total, 0)) > 0.0001
{%- endif %}
{% endtest %}

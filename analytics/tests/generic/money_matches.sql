{#- A reconciliation: per current tenant, a model's money column adds up to the same total as an
    expression over a source (both summed exactly, compared to the cent's hundredth). -#}
{% test money_matches(model, column_name, source_relation, source_expression, source_filter='1 = 1') %}
with mart as (
    select tenant_id, {{ money_sum(column_name) }} as total
    from {{ model }}
    group by tenant_id
),
src as (
    select tenant_id, {{ money_sum(source_expression) }} as total
    from {{ source_relation }}
    where ({{ source_filter }}) and {{ current_tenant() }}
    group by tenant_id
)
select coalesce(mart.tenant_id, src.tenant_id) as tenant_id, mart.total as mart_total, src.total as source_total
from mart
full outer join src on src.tenant_id = mart.tenant_id
where abs(coalesce(mart.total, 0) - coalesce(src.total, 0)) > 0.0001
{% endtest %}

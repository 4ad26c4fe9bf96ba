{#- MX Merchant: a refund (or return) is a transaction of that type or status; everything else that
    did not fail is a sale. -#}
{% macro mx_is_refund(t) %}(lower(coalesce({{ t }}.type, '')) in ('refund', 'return') or lower({{ t }}.status) = 'refunded'){% endmacro %}
{% macro mx_failed(t) %}(lower({{ t }}.status) in ('declined', 'voided', 'void', 'failed', 'error')){% endmacro %}

{#- The rows of `daily` (mx_transactions_daily) an incremental model over it must recompute: on a
    rebuild, each tenant's rows from `start` onwards (an expression of `changed.since`, the tenant's
    earliest day changed since this model's last build); on a full build, every row. -#}
{% macro mx_daily_rows_to_rebuild(daily, start='changed.since') %}
    {% if is_incremental() %}
    select d.*
    from (
        select tenant_id, min(day) as since
        from {{ daily }}
        where source_updated_at > (select max(source_updated_at) from {{ this }})
        group by tenant_id
    ) changed
    {{ rows_since(daily, 'd', 'changed', 'day', start) }}
    {% else %}
    select d.*
    from {{ daily }} d
    {% endif %}
{% endmacro %}

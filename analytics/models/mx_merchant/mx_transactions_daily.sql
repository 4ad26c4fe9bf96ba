-- MX Merchant transactions per tenant, UTC day, kind, category and product: the one pass over
-- `transactions` the other MX models aggregate (mx_sales_daily, and through mx_transactions_monthly
-- the revenue and invoice-linkage models). Incremental: a rebuild recomputes only the
-- days from the earliest transaction that changed since the last build (per tenant) onwards.
{#- indexes: the watermark, the days the incremental models over it read, and the build (its tests) -#}
{{ config(materialized='incremental', unique_key='day_key', incremental_strategy='delete+insert',
          pre_hook=["{{ add_build_id() }}", "{{ drop_removed_tenants() }}"],
          post_hook=["{{ index_on(this, 'ix_mx_transactions_daily_updated', ['source_updated_at']) }}",
                     "{{ index_on(this, 'ix_mx_transactions_daily_tenant_day', ['tenant_id', 'day']) }}",
                     "{{ build_id_index() }}"]) }}

with tx as (
    {% if is_incremental() %}
    select t.*
    from (
        select tenant_id, min(created_at) as since
        from {{ source('warehouse', 'transactions') }}
        {#- updated_at as stored: its index (ix_transactions_updated_at) serves; on SQLite the UTC text sorts as time #}
        where updated_at > (select max(source_updated_at) from {{ this }})
        group by tenant_id
    ) changed
    {{ rows_since(source('warehouse', 'transactions'), 't', 'changed', 'created_at', utc_day_start('changed.since')) }}
    {% else %}
    select t.*
    from {{ source('warehouse', 'transactions') }} t
    {% endif %}
)

select tenant_id || '|' || {{ dbt.cast(utc_day('created_at'), dbt.type_string()) }} as day_key,
       tenant_id,
       {{ utc_day('created_at') }} as day,
       case when {{ mx_failed('tx') }} then 'failed'
            when {{ mx_is_refund('tx') }} then 'refund'
            else 'sale' end as kind,
       coalesce(product_category, 'Uncategorized') as product_category,
       coalesce(primary_product, '(no product)') as product,
       count(*) as transactions,
       sum(case when has_invoice then 1 else 0 end) as invoiced_transactions,
       sum(case when invoice_number is not null or mx_invoice_id is not null then 1 else 0 end) as referencing_invoice,
       sum(case when invoice_id is not null then 1 else 0 end) as linked,
       {{ money_sum('amount') }} as amount,
       max({{ utc_ts('updated_at') }}) as source_updated_at,
       {{ build_id() }} as build_id
from tx
where {{ current_tenant() }}
group by tenant_id, {{ utc_day('created_at') }},
         case when {{ mx_failed('tx') }} then 'failed' when {{ mx_is_refund('tx') }} then 'refund' else 'sale' end,
         coalesce(product_category, 'Uncategorized'), coalesce(primary_product, '(no product)')

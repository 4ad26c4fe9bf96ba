-- MX Merchant transactions per tenant, UTC month, kind, category and product, summed from
-- mx_transactions_daily: what the revenue and invoice-linkage models aggregate (a month is about a
-- thirtieth of the daily rows). Incremental: a rebuild recomputes, per tenant, only the months from
-- the earliest day that changed since the last build onwards.
{{ config(materialized='incremental', unique_key='month_key', incremental_strategy='delete+insert',
          pre_hook=["{{ add_build_id() }}", "{{ drop_removed_tenants() }}"], post_hook=["{{ build_id_index() }}"]) }}

with daily as (
    {{ mx_daily_rows_to_rebuild(ref('mx_transactions_daily'), month_start('changed.since')) }}
)

select tenant_id || '|' || {{ dbt.cast(month_start('day'), dbt.type_string()) }} as month_key,
       tenant_id,
       {{ month_start('day') }} as month,
       kind,
       product_category,
       product,
       cast(sum(transactions) as bigint) as transactions,
       cast(sum(invoiced_transactions) as bigint) as invoiced_transactions,
       cast(sum(referencing_invoice) as bigint) as referencing_invoice,
       cast(sum(linked) as bigint) as linked,
       {{ money_sum('amount') }} as amount,
       max(source_updated_at) as source_updated_at,
       {{ build_id() }} as build_id
from daily
group by tenant_id, {{ month_start('day') }}, kind, product_category, product

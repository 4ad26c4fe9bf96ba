-- MX Merchant sales and refunds per tenant and UTC day (seed 003). Incremental: a rebuild
-- recomputes, per tenant, only the days from the earliest one that changed since the last build.
{{ config(materialized='incremental', unique_key="tenant_id || '|' || day", incremental_strategy='delete+insert',
          pre_hook=["{{ add_build_id() }}", "{{ drop_removed_tenants() }}"], post_hook=["{{ build_id_index() }}"]) }}

with daily as (
    {{ mx_daily_rows_to_rebuild(ref('mx_transactions_daily')) }}
)

select tenant_id,
       day,
       sum(case when kind = 'sale' then transactions else 0 end) as sales,
       {{ money_sum("case when kind = 'sale' then amount else 0 end") }} as sales_amount,
       sum(case when kind = 'refund' then transactions else 0 end) as refunds,
       {{ money_sum("case when kind = 'refund' then amount else 0 end") }} as refund_amount,
       sum(case when kind = 'failed' then transactions else 0 end) as failed,
       {{ money_sum("case when kind = 'sale' then amount else 0 end") }}
         - {{ money_sum("case when kind = 'refund' then amount else 0 end") }} as net_amount,
       {{ money_sum('amount') }} as gross_amount,
       max(source_updated_at) as source_updated_at,
       {{ build_id() }} as build_id
from daily
group by tenant_id, day

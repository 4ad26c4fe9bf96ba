-- MX Merchant API calls per transaction, per sync (one Dagster run of a tenant's MX streams).
with runs as (
    select tenant_id,
           run_id,
           min({{ utc_ts('started_at') }}) as started_at,
           sum(case when stream = 'mx_transactions' then rows else 0 end) as transactions,
           sum(case when stream = 'mx_transactions' then api_calls else 0 end) as transaction_calls,
           sum(case when stream = 'mx_invoices' then api_calls else 0 end) as invoice_calls,
           sum(api_calls) as api_calls,
           sum(quarantined) as quarantined,
           min(case when status = 'success' then 1 else 0 end) as succeeded
    from {{ source('warehouse', 'sync_runs') }}
    where stream in ('mx_transactions', 'mx_invoices', 'mx_products') and run_id is not null
      and {{ current_tenant() }}
    group by tenant_id, run_id
)

select tenant_id,
       run_id,
       started_at,
       transactions,
       transaction_calls,
       invoice_calls,
       api_calls,
       case when transactions > 0 then {{ round_to('1.0 * api_calls / transactions', 4) }} end as calls_per_transaction,
       quarantined,
       succeeded = 1 as succeeded
from runs

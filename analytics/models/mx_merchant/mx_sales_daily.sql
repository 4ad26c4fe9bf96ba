-- MX Merchant sales and refunds per tenant and UTC day (seed 003).
with tx as (
    select t.tenant_id,
           {{ utc_day('t.created_at') }} as day,
           t.amount,
           case when {{ mx_failed('t') }} then 'failed'
                when {{ mx_is_refund('t') }} then 'refund'
                else 'sale' end as kind
    from {{ source('warehouse', 'transactions') }} t
)

select tenant_id,
       day,
       sum(case when kind = 'sale' then 1 else 0 end) as sales,
       {{ money_sum("case when kind = 'sale' then amount else 0 end") }} as sales_amount,
       sum(case when kind = 'refund' then 1 else 0 end) as refunds,
       {{ money_sum("case when kind = 'refund' then amount else 0 end") }} as refund_amount,
       sum(case when kind = 'failed' then 1 else 0 end) as failed,
       {{ money_sum("case when kind = 'sale' then amount else 0 end") }}
         - {{ money_sum("case when kind = 'refund' then amount else 0 end") }} as net_amount,
       {{ money_sum('amount') }} as gross_amount
from tx
group by tenant_id, day

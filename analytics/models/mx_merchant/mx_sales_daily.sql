-- MX Merchant sales and refunds per tenant and UTC day (seed 003).
select tenant_id,
       day,
       sum(case when kind = 'sale' then transactions else 0 end) as sales,
       {{ money_sum("case when kind = 'sale' then amount else 0 end") }} as sales_amount,
       sum(case when kind = 'refund' then transactions else 0 end) as refunds,
       {{ money_sum("case when kind = 'refund' then amount else 0 end") }} as refund_amount,
       sum(case when kind = 'failed' then transactions else 0 end) as failed,
       {{ money_sum("case when kind = 'sale' then amount else 0 end") }}
         - {{ money_sum("case when kind = 'refund' then amount else 0 end") }} as net_amount,
       {{ money_sum('amount') }} as gross_amount
from {{ ref('mx_transactions_daily') }}
group by tenant_id, day

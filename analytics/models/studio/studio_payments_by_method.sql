-- Payments and refunds per studio (tenant), UTC month they moved, method and currency (seed 002).
select tenant_id,
       {{ month_start(utc_day('received_at')) }} as month,
       method,
       currency,
       sum(case when kind = 'payment' then 1 else 0 end) as payments,
       {{ money_sum("case when kind = 'payment' then amount else 0 end") }} as amount_paid,
       sum(case when kind = 'refund' then 1 else 0 end) as refunds,
       {{ money_sum("case when kind = 'refund' then amount else 0 end") }} as amount_refunded,
       {{ money_of(money_sum("case when kind = 'payment' then amount else 0 end") ~ ' - '
                   ~ money_sum("case when kind = 'refund' then amount else 0 end")) }} as net_amount
from {{ source('warehouse', 'studio_payments') }}
where {{ current_tenant() }}
group by tenant_id, {{ month_start(utc_day('received_at')) }}, method, currency

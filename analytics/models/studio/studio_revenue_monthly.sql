-- Revenue per studio (tenant), month and currency (seed 002): what the invoices issued that month
-- charged (void ones left out), without and with GST, beside the money collected that month
-- (payments less refunds, by the UTC day they moved).
with invoiced as (
    select tenant_id,
           {{ month_start(studio_issued_on('i', 'issued_at')) }} as month,
           currency,
           count(*) as invoices,
           {{ money_of(money_sum('total') ~ ' - ' ~ money_sum('tax_total')) }} as revenue,
           {{ money_sum('tax_total') }} as gst,
           {{ money_sum('total') }} as invoiced
    from {{ source('warehouse', 'studio_invoices') }} i
    where status not in ('draft', 'void') and {{ current_tenant() }}
    group by tenant_id, {{ month_start(studio_issued_on('i', 'issued_at')) }}, currency
),

collected as (
    select tenant_id, month, currency, {{ money_sum('net_amount') }} as collected
    from {{ ref('studio_payments_by_method') }}
    group by tenant_id, month, currency
),

months as (
    select tenant_id, month, currency from invoiced where month is not null
    union
    select tenant_id, month, currency from collected
)

select m.tenant_id,
       m.month,
       m.currency,
       coalesce(i.invoices, 0) as invoices,
       coalesce(i.revenue, 0) as revenue,
       coalesce(i.gst, 0) as gst,
       coalesce(i.invoiced, 0) as invoiced,
       coalesce(c.collected, 0) as collected
from months m
left join invoiced i on i.tenant_id = m.tenant_id and i.month = m.month and i.currency = m.currency
left join collected c on c.tenant_id = m.tenant_id and c.month = m.month and c.currency = m.currency

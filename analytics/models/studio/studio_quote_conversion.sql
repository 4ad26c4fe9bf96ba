-- Quote → invoice conversion per studio (tenant), month the quote was issued and currency
-- (seed 002): of the quotes sent, how many were accepted, declined, expired, and turned into an invoice.
with converted as (
    select tenant_id, quote_id
    from {{ source('warehouse', 'studio_invoices') }}
    where quote_id is not null
    group by tenant_id, quote_id
),

quotes as (
    select q.tenant_id,
           {{ month_start(studio_issued_on('q', 'sent_at')) }} as month,
           q.currency,
           q.status,
           q.total,
           case when q.invoice_id is not null or c.quote_id is not null then 1 else 0 end as converted
    from {{ source('warehouse', 'studio_quotes') }} q
    left join converted c on c.tenant_id = q.tenant_id and c.quote_id = q.id
    where q.status <> 'draft' and {{ current_tenant('q.tenant_id') }}
)

select tenant_id,
       month,
       currency,
       count(*) as quotes,
       sum(case when status = 'accepted' then 1 else 0 end) as accepted,
       sum(case when status = 'declined' then 1 else 0 end) as declined,
       sum(case when status = 'expired' then 1 else 0 end) as expired,
       sum(converted) as converted,
       {{ round_to('1.0 * sum(converted) / count(*)', 4) }} as conversion_rate,
       {{ money_sum('total') }} as quoted_amount,
       {{ money_sum('case when converted = 1 then total else 0 end') }} as converted_amount
from quotes
where month is not null
group by tenant_id, month, currency

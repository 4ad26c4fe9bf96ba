-- Quotes and invoices issued per studio (tenant), day and currency (seed 002): a document counts
-- on the date printed on it once it has left draft, whatever became of it since.
with documents as (
    select tenant_id, 'quote' as kind, {{ studio_issued_on('q', 'sent_at') }} as day, currency, total
    from {{ source('warehouse', 'studio_quotes') }} q
    union all
    select tenant_id, 'invoice' as kind, {{ studio_issued_on('i', 'issued_at') }} as day, currency, total
    from {{ source('warehouse', 'studio_invoices') }} i
)

select tenant_id,
       day,
       kind,
       currency,
       count(*) as documents,
       {{ money_sum('total') }} as amount
from documents
where day is not null and {{ current_tenant() }}
group by tenant_id, day, kind, currency

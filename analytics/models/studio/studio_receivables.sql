-- Every studio invoice with money owed on the "as of" day (the dbt var `studio_as_of`, else the
-- build's day, UTC), with its days overdue and ageing bucket (seed 002). The balance is the one it
-- had that day: its total less the payments received by then, plus the refunds made by then.
with as_of as (
    select {{ studio_as_of() }} as day
),

moved as (
    select p.tenant_id, p.invoice_id,
           {{ money_sum("case when p.kind = 'payment' then p.amount else 0 end") }} as paid,
           {{ money_sum("case when p.kind = 'refund' then p.amount else 0 end") }} as refunded
    from {{ source('warehouse', 'studio_payments') }} p
    cross join as_of
    where {{ utc_day('p.received_at') }} <= as_of.day
    group by p.tenant_id, p.invoice_id
),

owed as (
    select i.tenant_id,
           i.id as invoice_id,
           i.document_number,
           i.client_id,
           i.currency,
           {{ studio_issued_on('i', 'issued_at') }} as issued_on,
           i.due_date,
           as_of.day as as_of,
           {{ money_of(money('i.total')) }} as total,
           {{ money_of('coalesce(m.paid, 0) - coalesce(m.refunded, 0)') }} as paid_to_date,
           {{ money_of(money('i.total') ~ ' - coalesce(m.paid, 0) + coalesce(m.refunded, 0)') }} as balance,
           case when i.due_date is null then 0
                else {{ days_between('i.due_date', 'as_of.day') }} end as days_overdue
    from {{ source('warehouse', 'studio_invoices') }} i
    cross join as_of
    left join moved m on m.tenant_id = i.tenant_id and m.invoice_id = i.id
    where i.status <> 'draft' and {{ current_tenant('i.tenant_id') }}
      and not (i.status = 'void' and (i.voided_at is null or {{ utc_day('i.voided_at') }} <= as_of.day))
)

select tenant_id,
       invoice_id,
       document_number,
       client_id,
       currency,
       issued_on,
       due_date,
       as_of,
       total,
       paid_to_date,
       balance,
       case when days_overdue > 0 then days_overdue else 0 end as days_overdue,
       case when days_overdue <= 0 then 'current'
            when days_overdue <= 30 then '1-30'
            when days_overdue <= 60 then '31-60'
            when days_overdue <= 90 then '61-90'
            else 'over_90' end as bucket
from owed
where issued_on is not null and issued_on <= as_of and balance > 0.00005

-- Average quote value per studio (tenant), month the quote was issued and currency (issue 14): of
-- the quotes sent (drafts left out), their count, total and average, and the same for those accepted.
with quotes as (
    select q.tenant_id,
           {{ month_start(studio_issued_on('q', 'sent_at')) }} as month,
           q.currency,
           q.status,
           q.total
    from {{ source('warehouse', 'studio_quotes') }} q
    where q.status <> 'draft' and {{ current_tenant('q.tenant_id') }}
)

select tenant_id,
       month,
       currency,
       count(*) as quotes,
       {{ money_sum('total') }} as quoted_amount,
       {{ money_of(money_sum('total') ~ ' / count(*)') }} as average_value,
       sum(case when status = 'accepted' then 1 else 0 end) as accepted,
       {{ money_of('case when sum(case when status = \'accepted\' then 1 else 0 end) = 0 then null else '
                   ~ money_sum("case when status = 'accepted' then total else 0 end")
                   ~ ' / sum(case when status = \'accepted\' then 1 else 0 end) end') }} as average_accepted_value
from quotes
where month is not null
group by tenant_id, month, currency

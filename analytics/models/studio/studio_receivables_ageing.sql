-- Receivables ageing per studio (tenant) and currency on the "as of" day (seed 002): what is owed,
-- not yet due and by days overdue (1–30, 31–60, 61–90, over 90).
select tenant_id,
       currency,
       as_of,
       count(*) as invoices,
       sum(case when bucket <> 'current' then 1 else 0 end) as overdue_invoices,
       {{ money_sum("case when bucket = 'current' then balance else 0 end") }} as current_amount,
       {{ money_sum("case when bucket = '1-30' then balance else 0 end") }} as overdue_1_30,
       {{ money_sum("case when bucket = '31-60' then balance else 0 end") }} as overdue_31_60,
       {{ money_sum("case when bucket = '61-90' then balance else 0 end") }} as overdue_61_90,
       {{ money_sum("case when bucket = 'over_90' then balance else 0 end") }} as overdue_over_90,
       {{ money_sum('balance') }} as total_outstanding
from {{ ref('studio_receivables') }}
group by tenant_id, currency, as_of

-- MX Merchant revenue per tenant and product category (the membership dashboard of seed 003).
-- A sale counts for the category of its primary product; standalone payments are 'Uncategorized'.
select tenant_id,
       product_category,
       sum(transactions) as transactions,
       {{ money_sum('amount') }} as revenue,
       sum(invoiced_transactions) as invoiced_transactions
from {{ ref('mx_transactions_monthly') }}
where kind = 'sale'
group by tenant_id, product_category

-- MX Merchant revenue per tenant and product: each sale counts for its primary product (the
-- highest-value line of its invoice); payments without an invoice are '(no product)'.
select tenant_id,
       product,
       product_category,
       sum(transactions) as transactions,
       {{ money_sum('amount') }} as revenue
from {{ ref('mx_transactions_monthly') }}
where kind = 'sale'
group by tenant_id, product, product_category

-- MX Merchant revenue per tenant and product: each transaction counts for its primary product
-- (the highest-value line of its invoice); payments without an invoice are '(no product)'.
select t.tenant_id,
       coalesce(t.primary_product, '(no product)') as product,
       coalesce(t.product_category, 'Uncategorized') as product_category,
       count(*) as transactions,
       {{ money_sum('t.amount') }} as revenue
from {{ source('warehouse', 'transactions') }} t
where not {{ mx_failed('t') }} and not {{ mx_is_refund('t') }}
group by t.tenant_id, coalesce(t.primary_product, '(no product)'), coalesce(t.product_category, 'Uncategorized')

-- MX Merchant revenue per tenant and product category (the membership dashboard of seed 003).
-- A transaction counts for the category of its primary product; standalone payments are
-- 'Uncategorized'.
select t.tenant_id,
       coalesce(t.product_category, 'Uncategorized') as product_category,
       count(*) as transactions,
       {{ money_sum('t.amount') }} as revenue,
       sum(case when t.has_invoice then 1 else 0 end) as invoiced_transactions
from {{ source('warehouse', 'transactions') }} t
where not {{ mx_failed('t') }} and not {{ mx_is_refund('t') }}
group by t.tenant_id, coalesce(t.product_category, 'Uncategorized')

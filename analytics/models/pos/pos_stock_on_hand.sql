-- Stock on hand and inventory value per tenant, source, product and location (seeds 004, 000):
-- every live lot summed, valued at the product's current price.
with stock as (
    select i.tenant_id, i.source, i.product_id, i.location_id,
           max(i.quantity_unit) as quantity_unit,
           {{ money_sum('i.quantity') }} as quantity,
           max({{ money('i.low_stock_threshold') }}) as low_stock_threshold,
           count(*) as lots
    from {{ source('warehouse', 'inventory') }} i
    where i.deleted_at is null and {{ current_tenant('i.tenant_id') }}
    group by i.tenant_id, i.source, i.product_id, i.location_id
)

select s.tenant_id,
       s.source,
       s.product_id,
       s.location_id,
       p.name as product_name,
       coalesce(p.category, 'unmapped') as category,
       s.quantity,
       s.quantity_unit,
       s.lots,
       s.low_stock_threshold,
       {{ money('p.price') }} as unit_price,
       p.currency,
       {{ money_sum('s.quantity * ' ~ money('p.price')) }} as inventory_value
from stock s
left join {{ source('warehouse', 'products') }} p
  on p.tenant_id = s.tenant_id and p.source = s.source and p.product_id = s.product_id
group by s.tenant_id, s.source, s.product_id, s.location_id, p.name, p.category, s.quantity, s.quantity_unit,
         s.lots, s.low_stock_threshold, p.price, p.currency

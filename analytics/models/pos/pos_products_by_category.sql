-- Live products per tenant and source at every level of the category hierarchy: a product in
-- cannabis/edible/beverage counts for cannabis, cannabis/edible and cannabis/edible/beverage.
with live as (
    select tenant_id, source, product_id, category,
           {{ pos_of("'/'", 'category') }} as cut1
    from {{ source('warehouse', 'products') }}
    where deleted_at is null and status <> 'deleted' and {{ current_tenant() }}
),

split as (
    select tenant_id, source, product_id, category, cut1,
           case when cut1 > 0 then {{ pos_of("'/'", 'substr(category, cut1 + 1)') }} else 0 end as cut2
    from live
),

nodes as (
    select tenant_id, source, product_id,
           case when cut1 > 0 then substr(category, 1, cut1 - 1) else category end as category_path, 1 as depth
    from split
    union all
    select tenant_id, source, product_id,
           case when cut2 > 0 then substr(category, 1, cut1 + cut2 - 1) else category end, 2
    from split where cut1 > 0
    union all
    select tenant_id, source, product_id, category, 3
    from split where cut2 > 0
)

select tenant_id,
       source,
       category_path,
       depth,
       count(distinct product_id) as products
from nodes
group by tenant_id, source, category_path, depth

-- Products low on stock or out of stock per tenant and location (from pos_stock_on_hand).
select tenant_id,
       source,
       product_id,
       location_id,
       product_name,
       category,
       quantity,
       quantity_unit,
       low_stock_threshold,
       case when quantity <= 0 then 'out_of_stock' else 'low' end as stock_status
from {{ ref('pos_stock_on_hand') }}
where quantity <= 0 or quantity < low_stock_threshold

-- Live products per tenant, source and strain type ('none' for products without one).
select tenant_id,
       source,
       coalesce(strain_type, 'none') as strain_type,
       count(*) as products,
       sum(case when status = 'active' then 1 else 0 end) as active_products
from {{ source('warehouse', 'products') }}
where deleted_at is null and status <> 'deleted' and {{ current_tenant() }}
group by tenant_id, source, coalesce(strain_type, 'none')

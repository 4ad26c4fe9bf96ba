-- Lots still in stock that expire within 30 days (or already have), per tenant and location. Its
-- rows move with the date: the hourly job rebuilds it each new UTC day even when no lot changed.
{{ config(meta={'storehouse': {'rebuild_every': 'day'}}) }}

select i.tenant_id,
       i.source,
       i.location_id,
       i.product_id,
       i.lot_id,
       p.name as product_name,
       i.compliance_id,
       {{ money('i.quantity') }} as quantity,
       i.quantity_unit,
       i.expires_on,
       {{ days_until('i.expires_on') }} as days_to_expiry
from {{ source('warehouse', 'inventory') }} i
left join {{ source('warehouse', 'products') }} p
  on p.tenant_id = i.tenant_id and p.source = i.source and p.product_id = i.product_id
where i.deleted_at is null and {{ current_tenant('i.tenant_id') }}
  and i.expires_on is not null
  and i.expires_on <= {{ days_from_today(30) }}
  and {{ money('i.quantity') }} > 0

-- MX Merchant invoice linkage per tenant: of the transactions that reference an invoice, how many
-- are linked to a loaded one.
select t.tenant_id,
       count(*) as transactions,
       sum(case when t.invoice_number is not null or t.mx_invoice_id is not null then 1 else 0 end) as referencing_invoice,
       sum(case when t.invoice_id is not null then 1 else 0 end) as linked,
       case when sum(case when t.invoice_number is not null or t.mx_invoice_id is not null then 1 else 0 end) > 0
            then {{ round_to('1.0 * sum(case when t.invoice_id is not null then 1 else 0 end) / sum(case when t.invoice_number is not null or t.mx_invoice_id is not null then 1 else 0 end)', 4) }}
       end as linkage_rate
from {{ source('warehouse', 'transactions') }} t
group by t.tenant_id

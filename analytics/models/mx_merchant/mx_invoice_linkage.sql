-- MX Merchant invoice linkage per tenant: of the transactions that reference an invoice, how many
-- are linked to a loaded one (summed from mx_transactions_monthly, every transaction counted once).
select tenant_id,
       cast(sum(transactions) as bigint) as transactions,
       cast(sum(referencing_invoice) as bigint) as referencing_invoice,
       cast(sum(linked) as bigint) as linked,
       case when sum(referencing_invoice) > 0
            then {{ round_to('1.0 * sum(linked) / sum(referencing_invoice)', 4) }}
       end as linkage_rate
from {{ ref('mx_transactions_monthly') }}
group by tenant_id

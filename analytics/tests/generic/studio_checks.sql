{#- The studio's correctness checks (seed 002), run on its source tables: each returns the
    documents that break it, by tenant, so the failure names them. Blocking (severity error):
    dbt skips every mart built on a table that fails one, and the marts gate
    (assets/marts_gate.py) holds them back in a later run that does not re-run the check. -#}

{#- A document's subtotal, discounts, tax and total equal the sums of its lines. -#}
{% test studio_totals_equal_lines(model, lines, document_id) %}
with sums as (
    select tenant_id, {{ document_id }} as document_id,
           {{ money_sum('line_subtotal') }} as subtotal,
           {{ money_sum('line_discount') }} as discount_total,
           {{ money_sum('line_tax') }} as tax_total,
           {{ money_sum('line_total') }} as total
    from {{ lines }}
    group by tenant_id, {{ document_id }}
)
select d.tenant_id, d.document_number,
       {{ money('d.total') }} as total, coalesce(s.total, 0) as lines_total
from {{ model }} d
left join sums s on s.tenant_id = d.tenant_id and s.document_id = d.id
where {{ current_tenant('d.tenant_id') }}
  and (abs({{ money('d.subtotal') }} - coalesce(s.subtotal, 0)) > 0.00005
       or abs({{ money('d.discount_total') }} - coalesce(s.discount_total, 0)) > 0.00005
       or abs({{ money('d.tax_total') }} - coalesce(s.tax_total, 0)) > 0.00005
       or abs({{ money('d.total') }} - coalesce(s.total, 0)) > 0.00005)
{% endtest %}

{#- What an invoice says it was paid, net of refunds, equals its payments less its refunds. -#}
{% test studio_paid_equals_payments(model, payments) %}
with moved as (
    select tenant_id, invoice_id,
           {{ money_sum("case when kind = 'payment' then amount else 0 end") }}
             - {{ money_sum("case when kind = 'refund' then amount else 0 end") }} as net_paid
    from {{ payments }}
    group by tenant_id, invoice_id
)
select i.tenant_id, i.document_number,
       {{ money('i.amount_paid') }} - {{ money('i.amount_refunded') }} as invoice_net_paid,
       coalesce(m.net_paid, 0) as payments_net_paid
from {{ model }} i
left join moved m on m.tenant_id = i.tenant_id and m.invoice_id = i.id
where {{ current_tenant('i.tenant_id') }}
  and abs({{ money('i.amount_paid') }} - {{ money('i.amount_refunded') }} - coalesce(m.net_paid, 0)) > 0.00005
{% endtest %}

{#- Per tenant, the numbers of one kind of document run 1, 2, 3, … with none repeated or
    missing, and no two documents print the same document number. -#}
{% test studio_numbers_gapless(model, column_name) %}
with numbered as (
    select tenant_id, {{ column_name }} as number,
           lag({{ column_name }}) over (partition by tenant_id order by {{ column_name }}) as previous
    from {{ model }}
    where {{ current_tenant() }}
)
select tenant_id, 'duplicate' as problem, cast(number as varchar(40)) as detail
from numbered
where number = previous
union all
select tenant_id, 'gap' as problem, cast(coalesce(previous, 0) + 1 as varchar(40)) as detail
from numbered
where number - coalesce(previous, 0) > 1
union all
select tenant_id, 'duplicate document number' as problem, document_number as detail
from {{ model }}
where {{ current_tenant() }}
group by tenant_id, document_number
having count(*) > 1
{% endtest %}

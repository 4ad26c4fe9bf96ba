{#- MX Merchant: a refund (or return) is a transaction of that type or status; everything else that
    did not fail is a sale. -#}
{% macro mx_is_refund(t) %}(lower(coalesce({{ t }}.type, '')) in ('refund', 'return') or lower({{ t }}.status) = 'refunded'){% endmacro %}
{% macro mx_failed(t) %}(lower({{ t }}.status) in ('declined', 'voided', 'void', 'failed', 'error')){% endmacro %}

{#- Linear-interpolation percentiles (PostgreSQL's percentile_cont, Python's quantiles(method=
    "inclusive")) that SQLite can run too: rank the values per group with row_number, then take the
    two values around rank (n - 1) * p / 100 and interpolate. Integer arithmetic finds the ranks, so
    no float rounding moves them. `ranked` has the group columns, `value`, `rn` (1-based rank by
    value) and `n` (values in the group); `percent` is a whole number (50, 95). -#}
{% macro percentile_of(ranked, group_by, percent) -%}
  {%- set cols = group_by | join(', ') -%}
  select {{ cols }},
         max(lo) + (coalesce(max(hi), max(lo)) - max(lo)) * max(frac) as value
  from (
    select {{ cols }},
           ((n - 1) * {{ percent }} % 100) / 100.0 as frac,
           case when rn = (n - 1) * {{ percent }} / 100 + 1 then value end as lo,
           case when rn = (n - 1) * {{ percent }} / 100 + 2 then value end as hi
    from {{ ranked }}
  ) around
  group by {{ cols }}
{%- endmacro %}

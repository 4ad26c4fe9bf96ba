{#- An incremental model whose table lacks one of its documented columns (the model gained a column
    since that table was built, e.g. by an older Storehouse) is dropped before the run builds it,
    so it is built in full, not merged as rows of a new shape into a table of the old one. Only the
    models this run builds; only `dbt run` and `dbt build`. Called by on-run-start (dbt_project.yml). -#}
{% macro drop_stale_incrementals() %}
  {%- if execute and flags.WHICH in ('run', 'build') -%}
    {%- for node in graph.nodes.values() -%}
      {%- if node.resource_type == 'model' and node.config.materialized == 'incremental'
            and node.unique_id in selected_resources and not flags.FULL_REFRESH -%}
        {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- if relation is not none -%}
          {%- set have = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
          {%- set missing = node.columns.keys() | map('lower') | reject('in', have) | list -%}
          {%- if missing -%}
            {%- do log(node.name ~ ' lacks ' ~ missing | join(', ') ~ ': built in full', info=true) -%}
            {#- hooks run outside a transaction: open one (dbt's own drop does not), drop, commit -#}
            {%- call statement('begin_' ~ node.name, auto_begin=True) -%} select 1 {%- endcall -%}
            {%- do adapter.drop_relation(relation) -%}
            {%- do adapter.commit() -%}
          {%- endif -%}
        {%- endif -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{% endmacro %}

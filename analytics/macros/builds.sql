{#- The build that wrote each row of an incremental model: its `build_id` column holds dbt's
    invocation id, the same for every model and test of one `dbt build`. The hourly marts job
    (assets/marts.py) tests only the rows its build wrote: a test configured with
    `where: "__this_build__"` reads the rows whose build_id is this invocation's when
    STOREHOUSE_TESTS_THIS_BUILD_ONLY is "true" (set by the job), and the whole table otherwise (a
    plain `dbt build`/`dbt test`, CI, a full materialisation). On a full build every row is of
    this build, so both read the same rows. The environment is read only while executing
    (`execute`): a parse never records it, so it never makes dbt parse the project anew. -#}
{% macro build_id() %}cast('{{ invocation_id }}' as {{ dbt.type_string() }}){% endmacro %}

{% macro tests_this_build_only() -%}
{{ return(execute and env_var('STOREHOUSE_TESTS_THIS_BUILD_ONLY', 'false') == 'true') }}
{%- endmacro %}

{#- dbt's own macro, with the `__this_build__` placeholder of the where config (see above). -#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where') or '' -%}
  {%- if '__this_build__' in where -%}
    {%- set where = where | replace('__this_build__', "build_id = '" ~ invocation_id ~ "'" if tests_this_build_only() else '1 = 1') -%}
    {%- if where == '1 = 1' -%}{{ return(relation) }}{%- endif -%}
  {%- endif -%}
  {%- if where -%}
    {%- set filtered -%}
      (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- endset -%}
    {{ return(filtered) }}
  {%- endif -%}
  {{ return(relation) }}
{%- endmacro %}

{#- Pre-hook of the incremental models: a table built before they had `build_id` gains it (its old
    rows null: no build of the hourly job wrote them), as an incremental build inserts only the
    columns its table has (dbt-sqlite has no `on_schema_change`). -#}
{% macro add_build_id() -%}
{%- if is_incremental() and 'build_id' not in (adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list) -%}
alter table {{ this }} add column build_id {{ dbt.type_string() }}
{%- else -%}
select 1
{%- endif -%}
{%- endmacro %}

{#- Post-hook of the incremental models: an index on `build_id`, so that the tests of the hourly
    job's builds (`where: "__this_build__"`) read the few thousand rows a build wrote through it
    instead of scanning the table (each of a model's seven tests did). -#}
{% macro build_id_index() -%}
{{ index_on(this, 'ix_' ~ this.identifier ~ '_build', ['build_id']) }}
{%- endmacro %}

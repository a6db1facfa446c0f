# tests/unit/conf_tests.cmake - cmocka unit tests of conf/ (tcm.conf, TCM_* overrides), included
# at the end of tests/unit/CMakeLists.txt. They link the tcm_conf objects (libconfig, no core/)
# and, like the core tests, run one behaviour per CTest entry: test_conf_<program>_<behaviour>
# (tcm_unit_program of CMakeLists.txt, plus the conf objects and the example file's path).

tcm_unit_program(conf_load
  no_file_gives_defaults
  valid_file_sets_values_and_origins
  missing_etc_file_is_not_an_error
  missing_tcm_conf_file_is_an_error
  unreadable_file_is_an_error
  syntax_error_ignores_whole_file
  unknown_key_suggests_the_nearest
  wrong_type_keeps_that_key_default
  out_of_range_keeps_that_key_default
  integer_misread_by_libconfig_is_refused_as_written
  unknown_tcm_variable_suggests_the_nearest
  include_is_refused
  include_of_a_directory_is_refused_without_exit
  env_overrides_file_overrides_default
  bad_env_value_keeps_file_value
  messages_stay_on_one_line
  tcm_conf_wins_over_etc_file
  empty_tcm_conf_means_etc_file
  explicit_file_wins_over_tcm_conf
  setuid_ignores_tcm_conf_and_overrides
  margin_must_be_below_deadline
  default_margin_shrinks_silently_for_short_deadline
  no_error_sink_still_loads)

tcm_unit_program(conf_schema
  rows_match_keys_and_env_names
  defaults_pass_their_own_rules
  env_text_is_parsed_strictly
  stats_on_exit_takes_only_absolute_paths
  suggest_finds_typos_and_bare_keys
  expected_wording_per_type
  example_file_sets_every_key_to_its_default
  defaults_write_nothing_past_the_first_byte_of_the_paths
  set_path_keeps_each_path_apart
  stats_path_takes_absolute_paths_with_one_percent_p
  stats_path_names_the_process_file)

foreach(program IN ITEMS load schema)
  target_link_libraries(tcm_unit_conf_${program} PRIVATE tcm_conf)
  target_compile_definitions(tcm_unit_conf_${program} PRIVATE
    TCM_CONF_EXAMPLE_PATH="${PROJECT_SOURCE_DIR}/conf/tcm.conf.example")
endforeach()

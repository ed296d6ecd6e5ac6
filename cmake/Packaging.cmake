# Install layout and the Debian package (CPack, DEB generator). `scripts/package` builds
# build/polar-loadd_<version>-1_<arch>.deb. Paths below are relative to the install prefix
# (/usr in the package) unless absolute; the default config is a conffile under /etc.
include(GNUInstallDirs)

# The systemd unit: /usr/lib/systemd/system is searched by every systemd, merged /usr or not.
install(FILES packaging/polar-loadd.service DESTINATION lib/systemd/system)
# The instance template for several shards on one box (polar-loadd@0, @1, ...; docs/operations.md "Scaling out").
install(FILES packaging/polar-loadd@.service DESTINATION lib/systemd/system)
# The default config. Absolute: it belongs in /etc whatever the prefix, and dpkg keeps local edits
# (it is listed in packaging/deb/conffiles).
install(FILES packaging/polar-loadd.toml DESTINATION /etc/polar-loadd)

# Dashboards, Grafana provisioning and Prometheus rules (grafana/ in the source tree) under
# /usr/share/polar-loadd/, the layout grafana/README.md documents and grafana/provisioning/* and
# packaging/prometheus.yml point at. OPTIONAL: a folder that does not exist is skipped. The promtool
# unit tests stay in the source tree.
install(DIRECTORY grafana/dashboards DESTINATION share/polar-loadd OPTIONAL)
install(DIRECTORY grafana/provisioning/ DESTINATION share/polar-loadd/grafana-provisioning OPTIONAL)
install(DIRECTORY grafana/rules DESTINATION share/polar-loadd OPTIONAL PATTERN tests EXCLUDE)
# The README and the manual beside it, so the README's links to docs/*.md work where it is installed.
install(FILES README.md DESTINATION share/doc/polar-loadd)
install(DIRECTORY docs/ DESTINATION share/doc/polar-loadd/docs FILES_MATCHING PATTERN "*.md" PATTERN "*.png")
install(FILES grafana/README.md DESTINATION share/doc/polar-loadd RENAME grafana.md OPTIONAL)
install(FILES packaging/prometheus.yml DESTINATION share/doc/polar-loadd/examples OPTIONAL)
# A config within Polar's sandbox limits (docs/sandbox.md).
install(FILES packaging/examples/sandbox.toml DESTINATION share/doc/polar-loadd/examples)
install(FILES packaging/alertmanager.yml DESTINATION share/doc/polar-loadd/examples OPTIONAL)
# A drop-in that loads every credential encrypted at rest (systemd-creds) instead of in clear text.
install(FILES packaging/credentials-encrypted.conf DESTINATION share/doc/polar-loadd/examples)

# What Debian Policy asks of every package (12.5, 12.7, 12.1): the copyright in the machine-readable
# format, the Debian changelog and man pages, the last two compressed with gzip -9n (no name or time
# stamp in the header, so the same input gives the same bytes). `lintian` on the .deb is part of the
# test suite (tests/package/deb_test.sh); what it still says is overridden, with reasons, in
# packaging/deb/lintian-overrides.
find_program(POLAR_GZIP gzip REQUIRED)
set(polar_packaging_out ${PROJECT_BINARY_DIR}/packaging)
set(polar_compressed)
foreach(input packaging/deb/changelog packaging/man/polar-loadd.1 packaging/man/polar-sim.1
        packaging/man/polar-loadd.toml.5)
  get_filename_component(name ${input} NAME)
  set(output ${polar_packaging_out}/${name}.gz)
  add_custom_command(OUTPUT ${output}
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${polar_packaging_out}
                     COMMAND sh -c "${POLAR_GZIP} -9n -c ${PROJECT_SOURCE_DIR}/${input} > ${output}"
                     DEPENDS ${PROJECT_SOURCE_DIR}/${input} VERBATIM)
  list(APPEND polar_compressed ${output})
endforeach()
add_custom_target(polar_package_docs ALL DEPENDS ${polar_compressed})
install(FILES packaging/deb/copyright DESTINATION share/doc/polar-loadd)
install(FILES ${polar_packaging_out}/changelog.gz DESTINATION share/doc/polar-loadd
        RENAME changelog.Debian.gz)
install(FILES ${polar_packaging_out}/polar-loadd.1.gz ${polar_packaging_out}/polar-sim.1.gz
        DESTINATION share/man/man1)
install(FILES ${polar_packaging_out}/polar-loadd.toml.5.gz DESTINATION share/man/man5)
install(FILES packaging/deb/lintian-overrides DESTINATION share/lintian/overrides RENAME polar-loadd)
# Kubernetes manifests (StatefulSet, Services, scrape config): examples to copy, not installed into
# a cluster by anything.
install(DIRECTORY packaging/kubernetes DESTINATION share/doc/polar-loadd/examples OPTIONAL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME polar-loadd)
set(CPACK_PACKAGE_VENDOR "polar-loadd")
# The Maintainer field; packaging/deb/changelog and copyright name the same (deb_test checks it).
set(CPACK_PACKAGE_CONTACT "polar-loadd maintainers <polar-loadd@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "steady open-loop synthetic load on Polar's API, with Prometheus metrics")
# Lines of at most 80 characters (lintian: extended-description-line-too-long).
set(CPACK_PACKAGE_DESCRIPTION
    "polar-loadd keeps a scheduled, open-loop synthetic load on Polar's payment
API, measures latency from the intended send time and exports it as Prometheus
metrics. It runs as a hardened systemd service (Type=notify, watchdog, reload
without losing counters). The package also ships polar-sim (a local stand-in
for Polar's API), Grafana dashboards and Prometheus rules. Nothing is enabled
or started on install.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps on the built binaries.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# systemd to run the unit, but the binaries work without it. (ExecReload= is polar-loadd --reload,
# not /bin/kill: no procps.)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus, grafana")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
    ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
    ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
# Maintainer scripts 0755, conffiles 0644, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)

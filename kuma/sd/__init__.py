"""kuma-prometheus-sd: Prometheus service discovery for every dataplane, fed by kuma-cp's MADS.

    kuma-prometheus-sd run --cp-address http://kuma-cp:5681 --output-file /srv/kuma.file_sd.json

`config` (flags and `KUMA_*` variables), `targets` (monitoring assignments -> Prometheus target
groups), `filesd` (the file_sd JSON file, written atomically), `mads` (the xDS stream client),
`run` (catalog, reconnecting stream, file), `main` (the click command line).
"""

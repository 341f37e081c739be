{
  "targets": [
    {
      "target_name": "fsmeta",
      "sources": ["native/fsmeta.c", "native/fanotify.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}

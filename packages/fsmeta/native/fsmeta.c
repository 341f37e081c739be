/*
 * The system calls a faithful copy needs and Node's fs does not offer: extended attributes on
 * the link itself (l*xattr), data and hole ranges (lseek SEEK_DATA/SEEK_HOLE), hole punching
 * (fallocate), timestamps to the nanosecond (utimensat), and systemd's readiness datagrams
 * (sendto on a Unix socket, which Node's dgram cannot). Each call is synchronous and does
 * one bounded system call or a short loop of them; a failure throws an Error whose `code` is
 * the errno name (ENOENT, ENOTSUP, ...), with `syscall` and `path` as Node's own errors have.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define PATH_BYTES 4096
#define NAME_BYTES 256
/* Linux caps one attribute value at 64 KiB and a name list at 64 KiB. */
#define LIST_BYTES 65536
#define VALUE_BYTES 65536
/* sd_notify messages are a few short lines: READY=1, STATUS=..., WATCHDOG=1. */
#define NOTIFY_BYTES 4096

static const char *errno_name(int err) {
  switch (err) {
  case ENOENT: return "ENOENT";
  case ENOTSUP: return "ENOTSUP";
  case ENODATA: return "ENODATA";
  case EPERM: return "EPERM";
  case EACCES: return "EACCES";
  case ERANGE: return "ERANGE";
  case E2BIG: return "E2BIG";
  case ENOSPC: return "ENOSPC";
  case EDQUOT: return "EDQUOT";
  case EINVAL: return "EINVAL";
  case EBADF: return "EBADF";
  case ENOTDIR: return "ENOTDIR";
  case ELOOP: return "ELOOP";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case EROFS: return "EROFS";
  case EIO: return "EIO";
  case ENOMEM: return "ENOMEM";
  case ENXIO: return "ENXIO";
  case ECONNREFUSED: return "ECONNREFUSED";
  case EAGAIN: return "EAGAIN";
  case EMSGSIZE: return "EMSGSIZE";
  case ENOTSOCK: return "ENOTSOCK";
  case EPROTOTYPE: return "EPROTOTYPE";
  case EMFILE: return "EMFILE";
  default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  char message[PATH_BYTES + 128];
  napi_value code, msg, error, value;
  const char *name = errno_name(err);
  snprintf(message, sizeof message, "%s: %s, %s%s%s", name, strerror(err), syscall, path ? " " : "",
           path ? path : "");
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_set_named_property(env, error, "code", code);
  napi_create_int32(env, -err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &value);
    napi_set_named_property(env, error, "path", value);
  }
  napi_throw(env, error);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "fsmeta: missing argument");
    return 0;
  }
  return 1;
}

static int get_string(napi_env env, napi_value v, char *out, size_t cap, const char *what) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", what);
    return 0;
  }
  if (len >= cap - 1) {
    napi_throw_range_error(env, "ERR_INVALID_ARG", what);
    return 0;
  }
  return 1;
}

/* listXattrs(path): string[], the link's own attribute names ([] where unsupported). */
static napi_value list_xattrs(napi_env env, napi_callback_info info) {
  napi_value argv[1], result, name;
  char path[PATH_BYTES];
  if (!get_args(env, info, 1, argv) || !get_string(env, argv[0], path, sizeof path, "path: expected a string"))
    return NULL;
  /* Most files have no attribute at all: ask for the size first, allocate only when needed. */
  ssize_t n = llistxattr(path, NULL, 0);
  if (n < 0 && errno == ENOTSUP) n = 0;
  if (n < 0) return throw_errno(env, errno, "llistxattr", path);
  napi_create_array(env, &result);
  if (n == 0) return result;
  char *list = malloc(LIST_BYTES);
  if (!list) return throw_errno(env, ENOMEM, "malloc", path);
  n = llistxattr(path, list, LIST_BYTES);
  if (n < 0) {
    int err = errno;
    free(list);
    return throw_errno(env, err, "llistxattr", path);
  }
  uint32_t i = 0;
  for (ssize_t at = 0; at < n;) {
    size_t len = strnlen(list + at, (size_t)(n - at));
    napi_create_string_utf8(env, list + at, len, &name);
    napi_set_element(env, result, i++, name);
    at += (ssize_t)len + 1;
  }
  free(list);
  return result;
}

/* getXattr(path, name): Buffer | null (null: no such attribute). */
static napi_value get_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  char path[PATH_BYTES], name[NAME_BYTES];
  if (!get_args(env, info, 2, argv) || !get_string(env, argv[0], path, sizeof path, "path: expected a string") ||
      !get_string(env, argv[1], name, sizeof name, "name: expected a string of at most 255 bytes"))
    return NULL;
  char *value = malloc(VALUE_BYTES);
  if (!value) return throw_errno(env, ENOMEM, "malloc", path);
  ssize_t n = lgetxattr(path, name, value, VALUE_BYTES);
  int err = errno;
  if (n < 0 && err == ENODATA) {
    free(value);
    napi_get_null(env, &result);
    return result;
  }
  if (n < 0) {
    free(value);
    return throw_errno(env, err, "lgetxattr", path);
  }
  void *data;
  napi_create_buffer_copy(env, (size_t)n, value, &data, &result);
  free(value);
  return result;
}

/* setXattr(path, name, value: Uint8Array). */
static napi_value set_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_BYTES], name[NAME_BYTES];
  void *data;
  size_t len;
  if (!get_args(env, info, 3, argv) || !get_string(env, argv[0], path, sizeof path, "path: expected a string") ||
      !get_string(env, argv[1], name, sizeof name, "name: expected a string of at most 255 bytes"))
    return NULL;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, argv[2], &type, &len, &data, &buffer, &offset) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "value: expected a Uint8Array");
    return NULL;
  }
  if (lsetxattr(path, name, data, len, 0) < 0) return throw_errno(env, errno, "lsetxattr", path);
  return NULL;
}

/* removeXattr(path, name): false when there was none. */
static napi_value remove_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  char path[PATH_BYTES], name[NAME_BYTES];
  if (!get_args(env, info, 2, argv) || !get_string(env, argv[0], path, sizeof path, "path: expected a string") ||
      !get_string(env, argv[1], name, sizeof name, "name: expected a string of at most 255 bytes"))
    return NULL;
  int removed = lremovexattr(path, name) == 0;
  if (!removed && errno != ENODATA) return throw_errno(env, errno, "lremovexattr", path);
  napi_get_boolean(env, removed, &result);
  return result;
}

/*
 * dataRanges(fd, maxRanges): number[] as [start0, end0, start1, end1, ...], the regions holding
 * data (the rest are holes), or null when there are more than maxRanges (treat it as dense).
 */
static napi_value data_ranges(napi_env env, napi_callback_info info) {
  napi_value argv[2], result, value;
  int32_t fd;
  uint32_t max;
  if (!get_args(env, info, 2, argv)) return NULL;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_uint32(env, argv[1], &max) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "dataRanges(fd, maxRanges): expected two integers");
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) return throw_errno(env, errno, "fstat", NULL);
  napi_create_array(env, &result);
  uint32_t i = 0;
  off_t at = 0;
  while (at < st.st_size) {
    off_t start = lseek(fd, at, SEEK_DATA);
    if (start < 0 && errno == ENXIO) break; /* only a hole is left */
    if (start < 0 && errno == EINVAL) { start = at; } /* no SEEK_DATA here: all data */
    else if (start < 0) return throw_errno(env, errno, "lseek", NULL);
    off_t end = lseek(fd, start, SEEK_HOLE);
    if (end < 0) end = st.st_size;
    if (end > st.st_size) end = st.st_size;
    if (i / 2 >= max) {
      napi_get_null(env, &result);
      return result;
    }
    napi_create_double(env, (double)start, &value);
    napi_set_element(env, result, i++, value);
    napi_create_double(env, (double)end, &value);
    napi_set_element(env, result, i++, value);
    at = end;
  }
  return result;
}

/* punchHole(fd, offset, length): frees the range, keeping the size; false where unsupported. */
static napi_value punch_hole(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  int32_t fd;
  int64_t offset, length;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || offset < 0 || length < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "punchHole(fd, offset, length): expected integers >= 0");
    return NULL;
  }
  int ok = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0;
  if (!ok && errno != ENOTSUP && errno != EOPNOTSUPP) return throw_errno(env, errno, "fallocate", NULL);
  napi_get_boolean(env, ok, &result);
  return result;
}

static int get_ns(napi_env env, napi_value v, struct timespec *ts) {
  int64_t ns;
  bool lossless;
  if (napi_get_value_bigint_int64(env, v, &ns, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "times: expected bigint nanoseconds since the epoch");
    return 0;
  }
  ts->tv_sec = ns >= 0 ? ns / 1000000000 : -((-ns + 999999999) / 1000000000);
  ts->tv_nsec = ns - (int64_t)ts->tv_sec * 1000000000;
  return 1;
}

/* setTimesNs(path, atimeNs: bigint, mtimeNs: bigint): on the link itself, not its target. */
static napi_value set_times_ns(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_BYTES];
  struct timespec ts[2];
  if (!get_args(env, info, 3, argv) || !get_string(env, argv[0], path, sizeof path, "path: expected a string") ||
      !get_ns(env, argv[1], &ts[0]) || !get_ns(env, argv[2], &ts[1]))
    return NULL;
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0) return throw_errno(env, errno, "utimensat", path);
  return NULL;
}

/*
 * setMtime(target: string | fd, ms, ns): atime and mtime both to `ms` milliseconds plus `ns`
 * nanoseconds since the epoch; a path is the link itself, an fd the open file (futimens).
 */
static napi_value set_mtime(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_BYTES];
  napi_valuetype type;
  int64_t ms, ns;
  struct timespec ts[2];
  if (!get_args(env, info, 3, argv)) return NULL;
  if (napi_get_value_int64(env, argv[1], &ms) != napi_ok || napi_get_value_int64(env, argv[2], &ns) != napi_ok ||
      ms < 0 || ns < 0 || ns > 999999) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "times: expected whole ms >= 0 and ns from 0 to 999999");
    return NULL;
  }
  ts[0].tv_sec = ms / 1000;
  ts[0].tv_nsec = (ms % 1000) * 1000000 + ns;
  ts[1] = ts[0];
  napi_typeof(env, argv[0], &type);
  if (type == napi_number) {
    int32_t fd;
    napi_get_value_int32(env, argv[0], &fd);
    if (futimens(fd, ts) < 0) return throw_errno(env, errno, "futimens", NULL);
    return NULL;
  }
  if (!get_string(env, argv[0], path, sizeof path, "target: expected a path or an fd")) return NULL;
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0) return throw_errno(env, errno, "utimensat", path);
  return NULL;
}

/*
 * notify(socketPath, message): one datagram to a Unix socket, as sd_notify(3) sends to
 * $NOTIFY_SOCKET; a path starting with '@' is in the abstract namespace. No reply is read.
 */
static napi_value notify(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[sizeof ((struct sockaddr_un *)0)->sun_path + 1];
  char message[NOTIFY_BYTES];
  size_t len = 0;
  if (!get_args(env, info, 2, argv) ||
      !get_string(env, argv[0], path, sizeof path, "socketPath: expected a string of at most 107 bytes"))
    return NULL;
  if (napi_get_value_string_utf8(env, argv[1], message, sizeof message, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "message: expected a string");
    return NULL;
  }
  if (len >= sizeof message - 1) {
    napi_throw_range_error(env, "ERR_INVALID_ARG", "message: expected at most 4094 bytes");
    return NULL;
  }
  size_t path_len = strlen(path);
  if (path_len == 0 || (path[0] != '/' && path[0] != '@')) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "socketPath: expected an absolute path or @name");
    return NULL;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path, path_len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + (path[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", path);
  ssize_t sent = sendto(fd, message, len, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
  int err = errno;
  close(fd);
  if (sent < 0) return throw_errno(env, err, "sendto", path);
  return NULL;
}

/*
 * lstatDir(path): every entry of the folder `path` with its lstat, in one call: { names, stats }
 * where `names` is sorted (byte order, as Node's readdir) and `stats` holds LSTAT_FIELDS
 * doubles per name (see native.ts). Entries that vanish between the listing and their lstat,
 * and those of a kind that is not replicated (sockets, fifos, devices), are left out. One call
 * per folder instead of a BigInt lstat per entry: a restart's scan of 100,000 files went from
 * 1.1 s of lstat calls to a tenth of that.
 */
#define LSTAT_FIELDS 11

struct dir_entry {
  char *name;
  double f[LSTAT_FIELDS];
};

static int by_name(const void *a, const void *b) {
  return strcmp(((const struct dir_entry *)a)->name, ((const struct dir_entry *)b)->name);
}

static void free_entries(struct dir_entry *list, size_t n) {
  for (size_t i = 0; i < n; i++) free(list[i].name);
  free(list);
}

static int fill_entry(struct dir_entry *e, const struct stat *st) {
  double kind;
  if (S_ISREG(st->st_mode)) kind = 0;
  else if (S_ISDIR(st->st_mode)) kind = 1;
  else if (S_ISLNK(st->st_mode)) kind = 2;
  else return 0;
  /* The mtime as whole ms and the ns past them, truncated as a BigInt division does. */
  int64_t mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
  e->f[0] = kind;
  e->f[1] = kind == 0 ? (double)st->st_size : 0;
  e->f[2] = (double)(mtime_ns / 1000000);
  e->f[3] = (double)(mtime_ns % 1000000);
  e->f[4] = (double)(st->st_mode & 07777);
  e->f[5] = (double)st->st_uid;
  e->f[6] = (double)st->st_gid;
  e->f[7] = (double)st->st_ino;
  e->f[8] = (double)st->st_dev;
  e->f[9] = (double)st->st_nlink;
  e->f[10] = (double)st->st_ctim.tv_sec * 1e3 + (double)st->st_ctim.tv_nsec / 1e6;
  return 1;
}

static napi_value lstat_dir(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[PATH_BYTES];
  if (!get_args(env, info, 1, argv) || !get_string(env, argv[0], path, sizeof path, "path: expected a string"))
    return NULL;
  DIR *dir = opendir(path);
  if (!dir) return throw_errno(env, errno, "opendir", path);
  int dfd = dirfd(dir);
  size_t n = 0, cap = 64;
  struct dir_entry *list = malloc(cap * sizeof *list);
  int err = list ? 0 : ENOMEM;
  const char *failed = "malloc";
  struct dirent *de;
  while (!err && (errno = 0, de = readdir(dir)) != NULL) {
    if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
      continue;
    struct stat st;
    if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue; /* gone since the listing */
      err = errno;
      failed = "lstat";
      break;
    }
    if (n == cap) {
      struct dir_entry *grown = realloc(list, (cap *= 2) * sizeof *list);
      if (!grown) {
        err = ENOMEM;
        break;
      }
      list = grown;
    }
    if (!fill_entry(&list[n], &st)) continue;
    if (!(list[n].name = strdup(de->d_name))) {
      err = ENOMEM;
      break;
    }
    n++;
  }
  if (!err && errno != 0) {
    err = errno;
    failed = "readdir";
  }
  closedir(dir);
  if (err) {
    free_entries(list, n);
    return throw_errno(env, err, failed, path);
  }
  qsort(list, n, sizeof *list, by_name);
  napi_value names, buffer, stats, result;
  void *data = NULL;
  napi_create_array_with_length(env, n, &names);
  napi_create_arraybuffer(env, n * LSTAT_FIELDS * sizeof(double), &data, &buffer);
  for (size_t i = 0; i < n; i++) {
    napi_value name;
    napi_create_string_utf8(env, list[i].name, NAPI_AUTO_LENGTH, &name);
    napi_set_element(env, names, (uint32_t)i, name);
    memcpy((double *)data + i * LSTAT_FIELDS, list[i].f, sizeof list[i].f);
  }
  free_entries(list, n);
  napi_create_typedarray(env, napi_float64_array, n * LSTAT_FIELDS, buffer, 0, &stats);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "names", names);
  napi_set_named_property(env, result, "stats", stats);
  return result;
}

/*
 * trimMemory(): hands the C heap's free pages back to the system (glibc's malloc_trim). After
 * a burst of work (an initial sync, a full scan) glibc keeps what was freed mapped, and a
 * node's RSS stays at its high-water mark; this returns it. Elsewhere it does nothing.
 */
static napi_value trim_memory(napi_env env, napi_callback_info info) {
  napi_value result;
#ifdef __GLIBC__
  napi_get_boolean(env, malloc_trim(0) == 1, &result);
#else
  napi_get_boolean(env, false, &result);
#endif
  return result;
}

void fanotify_register(napi_env env, napi_value exports); /* native/fanotify.c */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"listXattrs", NULL, list_xattrs, NULL, NULL, NULL, napi_default, NULL},
    {"getXattr", NULL, get_xattr, NULL, NULL, NULL, napi_default, NULL},
    {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_default, NULL},
    {"removeXattr", NULL, remove_xattr, NULL, NULL, NULL, napi_default, NULL},
    {"dataRanges", NULL, data_ranges, NULL, NULL, NULL, napi_default, NULL},
    {"punchHole", NULL, punch_hole, NULL, NULL, NULL, napi_default, NULL},
    {"setTimesNs", NULL, set_times_ns, NULL, NULL, NULL, napi_default, NULL},
    {"setMtime", NULL, set_mtime, NULL, NULL, NULL, napi_default, NULL},
    {"notify", NULL, notify, NULL, NULL, NULL, napi_default, NULL},
    {"trimMemory", NULL, trim_memory, NULL, NULL, NULL, napi_default, NULL},
    {"lstatDir", NULL, lstat_dir, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  fanotify_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

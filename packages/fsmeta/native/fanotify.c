/*
 * A whole-filesystem watch with fanotify(7), for a primary run as root: one mark covers every
 * folder of the filesystem that holds the root, with none of inotify's per-user watch limits
 * and no crawl to set watches up. Events name the folder by file handle and the entry by name
 * (FAN_REPORT_DFID_NAME); the folder's path is found with open_by_handle_at and the
 * /proc/self/fd link of what it opened, and only paths under the root reach JavaScript,
 * relative to it.
 *
 *   fanotifyOpen(root)                 a watch (an external), the mark in place when it returns
 *   fanotifyRead(watch, timeoutMs)     waits up to timeoutMs for events, then returns one read's
 *                                      worth: { paths, masks, overflow }
 *   fanotifyClose(watch)               ends it (again: nothing); the finalizer closes a lost one
 *
 * Folder paths resolved are kept in a small table keyed by handle. A folder moved or removed
 * anywhere on the filesystem empties it, so that no event after a move is given the folder's
 * old path. A failure throws an Error whose code is ERR_FANOTIFY, the errno name in its
 * message and in `errno`, and `syscall`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FAN_REPORT_DFID_NAME
#define FAN_REPORT_DIR_FID 0x00000400
#define FAN_REPORT_NAME 0x00000800
#define FAN_REPORT_DFID_NAME (FAN_REPORT_DIR_FID | FAN_REPORT_NAME)
#endif
#ifndef FAN_EVENT_INFO_TYPE_DFID_NAME
#define FAN_EVENT_INFO_TYPE_DFID_NAME 2
#define FAN_EVENT_INFO_TYPE_DFID 3
#endif

#define FAN_PATH_BYTES 4096
/* One read: a few hundred to a couple of thousand events, each turned into at most one path. */
#define READ_BYTES 65536
#define CACHE_SLOTS 64
#define HANDLE_BYTES 128

static const uint64_t WATCH_MASK = FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_MODIFY |
                                   FAN_CLOSE_WRITE | FAN_ATTRIB | FAN_DELETE_SELF | FAN_MOVE_SELF |
                                   FAN_ONDIR | FAN_EVENT_ON_CHILD;
/* What, done to a folder, can change the path of folders below it or free its handle. */
static const uint64_t DIR_MOVES = FAN_MOVED_FROM | FAN_MOVED_TO | FAN_MOVE_SELF | FAN_DELETE | FAN_DELETE_SELF;

struct cached_dir {
  uint32_t bytes; /* 0: empty slot */
  int type;
  unsigned char handle[HANDLE_BYTES];
  char *path;
};

struct watch {
  int fan_fd;
  int mount_fd;
  size_t root_len;
  char root[FAN_PATH_BYTES];
  struct cached_dir cache[CACHE_SLOTS];
  /* fanotify_event_metadata is 8-byte aligned. */
  uint64_t buf[READ_BYTES / sizeof(uint64_t)];
};

static const char *fan_errno_name(int err) {
  switch (err) {
  case EPERM: return "EPERM";
  case EACCES: return "EACCES";
  case EINVAL: return "EINVAL";
  case ENOSYS: return "ENOSYS";
  case ENODEV: return "ENODEV";
  case EXDEV: return "EXDEV";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case EMFILE: return "EMFILE";
  case ENFILE: return "ENFILE";
  case ENOMEM: return "ENOMEM";
  case ENOSPC: return "ENOSPC";
  case ENOENT: return "ENOENT";
  case ENOTDIR: return "ENOTDIR";
  case ESTALE: return "ESTALE";
  case EOVERFLOW: return "EOVERFLOW";
  case EBADF: return "EBADF";
  case EINTR: return "EINTR";
  case EIO: return "EIO";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  default: return "EUNKNOWN";
  }
}

static napi_value throw_fan(napi_env env, int err, const char *syscall, const char *path) {
  char message[FAN_PATH_BYTES + 160];
  napi_value code, msg, error, value;
  const char *name = fan_errno_name(err);
  snprintf(message, sizeof message, "%s%s%s: %s: %s", syscall, path ? " " : "", path ? path : "", name,
           strerror(err));
  napi_create_string_utf8(env, "ERR_FANOTIFY", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_set_named_property(env, error, "code", code);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  napi_throw(env, error);
  return NULL;
}

static void cache_clear(struct watch *w) {
  for (int i = 0; i < CACHE_SLOTS; i++) {
    free(w->cache[i].path);
    w->cache[i].path = NULL;
    w->cache[i].bytes = 0;
  }
}

static void watch_close(struct watch *w) {
  if (w->fan_fd >= 0) close(w->fan_fd);
  if (w->mount_fd >= 0) close(w->mount_fd);
  w->fan_fd = w->mount_fd = -1;
  cache_clear(w);
}

static void watch_finalize(napi_env env, void *data, void *hint) {
  struct watch *w = data;
  watch_close(w);
  free(w);
}

/* The path an O_PATH (or any) fd was opened at, from its /proc/self/fd link; -1 with errno. */
static ssize_t fd_path(int fd, char *out, size_t cap) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, out, cap - 1);
  if (n < 0) return -1;
  if ((size_t)n >= cap - 1) {
    errno = ENAMETOOLONG;
    return -1;
  }
  out[n] = '\0';
  return n;
}

static uint32_t handle_hash(const struct file_handle *h) {
  uint32_t x = 2166136261u ^ (uint32_t)h->handle_type;
  for (uint32_t i = 0; i < h->handle_bytes; i++) x = (x ^ h->f_handle[i]) * 16777619u;
  return x % CACHE_SLOTS;
}

/*
 * The path of the folder `h` names, in `out`: 1 found, 0 gone (a stale handle, or a folder
 * removed while open elsewhere: its parent's event reports it), -1 with errno on failure.
 */
static int dir_path(struct watch *w, struct file_handle *h, char *out, size_t cap) {
  if (h->handle_bytes > HANDLE_BYTES) {
    errno = EOVERFLOW;
    return -1;
  }
  struct cached_dir *slot = &w->cache[handle_hash(h)];
  if (slot->bytes == h->handle_bytes && slot->type == h->handle_type &&
      memcmp(slot->handle, h->f_handle, h->handle_bytes) == 0) {
    snprintf(out, cap, "%s", slot->path);
    return 1;
  }
  int fd = open_by_handle_at(w->mount_fd, h, O_PATH | O_CLOEXEC);
  if (fd < 0) return errno == ESTALE || errno == ENOENT ? 0 : -1;
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
    close(fd);
    return 0;
  }
  ssize_t n = fd_path(fd, out, cap);
  int err = errno;
  close(fd);
  if (n < 0) {
    errno = err;
    return -1;
  }
  char *copy = strdup(out);
  if (copy) {
    free(slot->path);
    slot->path = copy;
    slot->bytes = h->handle_bytes;
    slot->type = h->handle_type;
    memcpy(slot->handle, h->f_handle, h->handle_bytes);
  }
  return 1;
}

/* `dir` relative to the root, or NULL when it is not the root or below it. */
static const char *below_root(const struct watch *w, const char *dir) {
  if (w->root_len == 1) return dir + 1; /* the root is "/" */
  if (strncmp(dir, w->root, w->root_len) != 0) return NULL;
  if (dir[w->root_len] == '\0') return dir + w->root_len;
  if (dir[w->root_len] == '/') return dir + w->root_len + 1;
  return NULL;
}

static struct watch *get_watch(napi_env env, napi_value v) {
  void *data = NULL;
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external ||
      napi_get_value_external(env, v, &data) != napi_ok || !data) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "watch: expected what fanotifyOpen returned");
    return NULL;
  }
  return data;
}

/* Checks that a handle of the root opens again: file handles work on this filesystem. */
static int check_handles(struct watch *w) {
  struct {
    struct file_handle h;
    unsigned char bytes[HANDLE_BYTES];
  } fh;
  int mount_id;
  fh.h.handle_bytes = HANDLE_BYTES;
  if (name_to_handle_at(w->mount_fd, "", &fh.h, &mount_id, AT_EMPTY_PATH) < 0) return -1;
  int fd = open_by_handle_at(w->mount_fd, &fh.h, O_PATH | O_CLOEXEC);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

/* fanotifyOpen(root): a watch of the filesystem holding `root` (a folder). */
static napi_value fan_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  char path[FAN_PATH_BYTES];
  size_t len = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok ||
      len >= sizeof path - 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "root: expected a path string");
    return NULL;
  }
  struct watch *w = calloc(1, sizeof *w);
  if (!w) return throw_fan(env, ENOMEM, "calloc", NULL);
  w->fan_fd = w->mount_fd = -1;
  const char *step = "open";
  w->mount_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (w->mount_fd < 0) goto fail;
  step = "readlink /proc/self/fd";
  ssize_t n = fd_path(w->mount_fd, w->root, sizeof w->root);
  if (n < 0) goto fail;
  w->root_len = (size_t)n;
  step = "fanotify_init";
  w->fan_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_CLOEXEC | FAN_NONBLOCK,
                            O_RDONLY | O_LARGEFILE);
  if (w->fan_fd < 0) goto fail;
  step = "fanotify_mark";
  if (fanotify_mark(w->fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, WATCH_MASK, w->mount_fd, NULL) < 0) goto fail;
  step = "open_by_handle_at";
  if (check_handles(w) < 0) goto fail;
  if (napi_create_external(env, w, watch_finalize, NULL, &result) != napi_ok) {
    watch_close(w);
    free(w);
    return throw_fan(env, ENOMEM, "napi_create_external", path);
  }
  return result;
fail: {
  int err = errno;
  watch_close(w);
  free(w);
  return throw_fan(env, err, step, path);
}
}

struct batch {
  napi_value paths, masks;
  uint32_t count;
};

static void push(napi_env env, struct batch *b, const char *rel, size_t len, uint64_t mask) {
  napi_value s, m;
  napi_create_string_utf8(env, rel, len, &s);
  napi_create_uint32(env, (uint32_t)(mask & 0xffffffffu), &m);
  napi_set_element(env, b->paths, b->count, s);
  napi_set_element(env, b->masks, b->count, m);
  b->count++;
}

/*
 * One event's folder record (the first DFID_NAME or DFID), as a path relative to the root
 * pushed onto `b`. Returns 0, or -1 with errno when the folder's path could not be found for
 * a reason other than its being gone.
 */
static int take_event(napi_env env, struct watch *w, const struct fanotify_event_metadata *meta,
                      struct batch *b, char *dir) {
  const char *at = (const char *)meta + meta->metadata_len;
  const char *end = (const char *)meta + meta->event_len;
  while (at + sizeof(struct fanotify_event_info_header) <= end) {
    const struct fanotify_event_info_header *hdr = (const void *)at;
    if (hdr->len == 0 || at + hdr->len > end) break;
    if (hdr->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME || hdr->info_type == FAN_EVENT_INFO_TYPE_DFID) {
      const struct fanotify_event_info_fid *fid = (const void *)at;
      struct {
        struct file_handle h;
        unsigned char bytes[HANDLE_BYTES];
      } fh;
      const struct file_handle *src = (const void *)fid->handle;
      size_t room = (size_t)(end - (const char *)fid->handle);
      if (room < sizeof(struct file_handle) || src->handle_bytes > HANDLE_BYTES ||
          sizeof(struct file_handle) + src->handle_bytes > room) {
        errno = EOVERFLOW;
        return -1;
      }
      memcpy(&fh.h, src, sizeof(struct file_handle) + src->handle_bytes);
      const char *name = hdr->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME
                             ? (const char *)src->f_handle + src->handle_bytes
                             : NULL;
      if (name && (name[0] == '\0' || (name[0] == '.' && name[1] == '\0'))) name = NULL;
      int found = dir_path(w, &fh.h, dir, FAN_PATH_BYTES);
      if (found <= 0) return found;
      const char *rel = below_root(w, dir);
      if (!rel) return 0;
      if (!name) {
        push(env, b, rel, strlen(rel), meta->mask);
        return 0;
      }
      size_t rel_len = strlen(rel), name_len = strnlen(name, (size_t)(end - name));
      if (rel_len == 0) {
        push(env, b, name, name_len, meta->mask);
        return 0;
      }
      if (rel_len + 1 + name_len >= FAN_PATH_BYTES) {
        errno = ENAMETOOLONG;
        return -1;
      }
      memmove(dir, rel, rel_len);
      dir[rel_len] = '/';
      memcpy(dir + rel_len + 1, name, name_len);
      push(env, b, dir, rel_len + 1 + name_len, meta->mask);
      return 0;
    }
    at += hdr->len;
  }
  return 0;
}

/*
 * fanotifyRead(watch, timeoutMs): { paths: string[], masks: number[], overflow: boolean,
 * events: number }, what one read of the queue held (empty after timeoutMs with nothing), paths
 * relative to the root ('' the root itself); events: how many the read took, those outside the
 * root too. overflow: the kernel's queue overflowed, or a path could not be found:
 * events were lost, and the tree needs a rescan.
 */
static napi_value fan_read(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result, value;
  int32_t timeout;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "fanotifyRead(watch, timeoutMs): missing argument");
    return NULL;
  }
  struct watch *w = get_watch(env, argv[0]);
  if (!w) return NULL;
  if (napi_get_value_int32(env, argv[1], &timeout) != napi_ok || timeout < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "timeoutMs: expected a whole number >= 0");
    return NULL;
  }
  if (w->fan_fd < 0) return throw_fan(env, EBADF, "fanotify read", "(closed)");
  struct batch b = {0};
  bool overflow = false;
  uint32_t events = 0;
  napi_create_array(env, &b.paths);
  napi_create_array(env, &b.masks);
  struct pollfd pfd = {.fd = w->fan_fd, .events = POLLIN};
  int ready = poll(&pfd, 1, timeout);
  if (ready < 0 && errno != EINTR) return throw_fan(env, errno, "poll", NULL);
  ssize_t len = ready > 0 ? read(w->fan_fd, w->buf, sizeof w->buf) : 0;
  if (len < 0 && errno != EAGAIN && errno != EINTR) return throw_fan(env, errno, "read", NULL);
  char *dir = malloc(FAN_PATH_BYTES);
  if (!dir) return throw_fan(env, ENOMEM, "malloc", NULL);
  const struct fanotify_event_metadata *meta = (const void *)w->buf;
  for (; len > 0 && FAN_EVENT_OK(meta, len); meta = FAN_EVENT_NEXT(meta, len)) {
    if (meta->vers != FANOTIFY_METADATA_VERSION) {
      free(dir);
      return throw_fan(env, EINVAL, "read (fanotify metadata version)", NULL);
    }
    if (meta->fd >= 0) close(meta->fd);
    events++;
    if (meta->mask & FAN_Q_OVERFLOW) {
      overflow = true;
      cache_clear(w);
      continue;
    }
    if ((meta->mask & FAN_ONDIR) && (meta->mask & DIR_MOVES)) cache_clear(w);
    if (take_event(env, w, meta, &b, dir) < 0) overflow = true;
  }
  free(dir);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "paths", b.paths);
  napi_set_named_property(env, result, "masks", b.masks);
  napi_get_boolean(env, overflow, &value);
  napi_set_named_property(env, result, "overflow", value);
  napi_create_uint32(env, events, &value);
  napi_set_named_property(env, result, "events", value);
  return result;
}

/* fanotifyClose(watch): removes the mark and frees the queue; closing twice does nothing. */
static napi_value fan_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "fanotifyClose(watch): missing argument");
    return NULL;
  }
  struct watch *w = get_watch(env, argv[0]);
  if (w) watch_close(w);
  return NULL;
}

/* Adds the calls above to the addon's exports (called from fsmeta.c's init). */
void fanotify_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"fanotifyOpen", NULL, fan_open, NULL, NULL, NULL, napi_default, NULL},
    {"fanotifyRead", NULL, fan_read, NULL, NULL, NULL, napi_default, NULL},
    {"fanotifyClose", NULL, fan_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

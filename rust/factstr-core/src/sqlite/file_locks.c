/*
 * File locks of the bundled SQLite that another SQLite library in the same process cannot drop
 * (Linux). Installed into SQLite's unix VFS as its "fcntl", "open" and "close" system calls by
 * file_locks.rs, which explains why; this file holds only what must be C (fcntl is variadic).
 *
 * Three rules:
 *  1. Locks: every F_SETLK/F_SETLKW/F_GETLK on a file becomes the open-file-description (OFD)
 *     variant on one private descriptor per file (inode), opened afresh through /proc/self/fd.
 *     All our connections thus share one lock owner, as they did with POSIX locks (which belong
 *     to the process), but that owner is no longer the process: a POSIX lock of the other library
 *     (Python's sqlite3) conflicts with ours, and its close() cannot release ours.
 *  2. Closing: close() of any descriptor releases *all* POSIX locks the process holds on that
 *     file, i.e. the other library's. So a descriptor of a file we have locked is not closed while
 *     the other library holds a POSIX lock on it: it is parked, and reused by the next open of the
 *     same file. When neither library uses the file any more, everything is really closed.
 *  3. Fork: a child must not share the parent's lock owner; it forgets the tables (without
 *     closing anything: the descriptors are the parent's too) and makes its own.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64 /* struct flock as SQLite's unix VFS fills it in */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#define F_OFD_SETLKW 38
#endif

/* One file (inode) that SQLite opened through us. */
struct tracked_file {
    dev_t dev;
    ino_t ino;
    int open_count;   /* descriptors SQLite holds (opened, not yet closed) */
    int lock_fd;      /* the private descriptor that owns our locks, or -1 before the first lock */
    int parked_count; /* descriptors SQLite closed that we keep open (rule 2) */
    int parked_cap;
    int *parked_fds;
    int *parked_modes; /* their access mode (O_RDONLY, O_RDWR), for reuse by a matching open */
};

static pthread_mutex_t table_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct tracked_file *files;
static int file_count;
static int file_cap;
/* Set when the kernel refuses OFD locks (before Linux 3.15): plain POSIX locks from then on. */
static int ofd_unsupported;

static void forget_all_after_fork(void) {
    /* The descriptors stay open in the child (they are shared with the parent, so closing them
     * would only drop the child's locks, which it has none of); the memory is simply dropped. */
    files = NULL;
    file_count = 0;
    file_cap = 0;
    pthread_mutex_init(&table_mutex, NULL);
}

static void lock_table(void) { pthread_mutex_lock(&table_mutex); }
static void unlock_table(void) { pthread_mutex_unlock(&table_mutex); }

static struct tracked_file *find_file(dev_t dev, ino_t ino) {
    for (int i = 0; i < file_count; i++) {
        if (files[i].dev == dev && files[i].ino == ino) return &files[i];
    }
    return NULL;
}

static struct tracked_file *find_or_add_file(dev_t dev, ino_t ino) {
    struct tracked_file *file = find_file(dev, ino);
    if (file) return file;
    if (file_count == file_cap) {
        int cap = file_cap ? file_cap * 2 : 16;
        struct tracked_file *grown = realloc(files, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        files = grown;
        file_cap = cap;
    }
    file = &files[file_count++];
    file->dev = dev;
    file->ino = ino;
    file->open_count = 0;
    file->lock_fd = -1;
    file->parked_count = 0;
    file->parked_cap = 0;
    file->parked_fds = NULL;
    file->parked_modes = NULL;
    return file;
}

static void remove_file(struct tracked_file *file) {
    free(file->parked_fds);
    free(file->parked_modes);
    *file = files[--file_count];
}

/* Whether this process holds a POSIX lock on the file, seen through our private descriptor: an
 * OFD query reports locks of every other owner, and a POSIX lock carries its process id. */
static int process_holds_posix_lock(int lock_fd) {
    pid_t self = getpid();
    off_t start = 0;
    for (int probes = 0; probes < 64; probes++) {
        struct flock probe = {0};
        probe.l_type = F_WRLCK;
        probe.l_whence = SEEK_SET;
        probe.l_start = start;
        probe.l_len = 0; /* to the end of the file and beyond */
        probe.l_pid = 0;
        if (fcntl(lock_fd, F_OFD_GETLK, &probe) != 0) return 1; /* cannot tell: assume yes */
        if (probe.l_type == F_UNLCK) return 0;
        if (probe.l_pid == self) return 1;
        if (probe.l_len == 0) return 0; /* another process's lock runs to the end */
        start = probe.l_start + probe.l_len;
    }
    return 1;
}

/* Really closes everything we keep for files SQLite no longer holds open, unless the other
 * library still holds a POSIX lock there (closing would release it). */
static void close_unused_files(void) {
    for (int i = 0; i < file_count;) {
        struct tracked_file *file = &files[i];
        if (file->open_count > 0 || (file->lock_fd >= 0 && process_holds_posix_lock(file->lock_fd))) {
            i++;
            continue;
        }
        for (int p = 0; p < file->parked_count; p++) close(file->parked_fds[p]);
        if (file->lock_fd >= 0) close(file->lock_fd);
        remove_file(file); /* moves the last entry to i */
    }
}

/* Our private lock owner for the file of `fd` (rule 1), or -1 to fall back to POSIX locks. */
static int lock_fd_for(int fd) {
    struct stat st;
    if (ofd_unsupported || fstat(fd, &st) != 0) return -1;
    lock_table();
    struct tracked_file *file = find_or_add_file(st.st_dev, st.st_ino);
    int lock_fd = -1;
    if (file) {
        if (file->lock_fd < 0) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            /* A new open file description: neither SQLite's descriptors nor (after fork) the
             * parent's share it. Without /proc, a duplicate still gives one owner for our
             * connections. */
            file->lock_fd = open(path, O_RDWR | O_CLOEXEC);
            if (file->lock_fd < 0) file->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
            if (file->lock_fd < 0) file->lock_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        }
        lock_fd = file->lock_fd;
    }
    unlock_table();
    return lock_fd;
}

static int file_lock(int fd, int op, struct flock *lock) {
    int lock_fd = lock_fd_for(fd);
    if (lock_fd >= 0) {
        int ofd_op = op == F_GETLK ? F_OFD_GETLK : op == F_SETLK ? F_OFD_SETLK : F_OFD_SETLKW;
        lock->l_pid = 0; /* required by OFD requests */
        int rc = fcntl(lock_fd, ofd_op, lock);
        if (!(rc != 0 && errno == EINVAL)) return rc;
        ofd_unsupported = 1; /* SQLite's requests are well formed: the kernel lacks OFD locks */
    }
    return fcntl(fd, op, lock);
}

int factstr_sqlite_fcntl(int fd, int op, ...) {
    va_list args;
    va_start(args, op);
    int rc;
    if (op == F_GETLK || op == F_SETLK || op == F_SETLKW) {
        struct flock *lock = va_arg(args, struct flock *);
        rc = file_lock(fd, op, lock);
    } else {
        /* SQLite's other uses on Linux (F_GETFD, F_SETFD) take an int. */
        int value = va_arg(args, int);
        rc = fcntl(fd, op, value);
    }
    va_end(args);
    return rc;
}

/* SQLite's "open" system call (not variadic: posixOpen(path, flags, mode)). */
int factstr_sqlite_open(const char *path, int flags, int mode) {
    int fd = -1;
    struct stat st;
    if (!(flags & (O_EXCL | O_TRUNC)) && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        lock_table();
        struct tracked_file *file = find_file(st.st_dev, st.st_ino);
        if (file) {
            for (int p = 0; p < file->parked_count; p++) {
                if (file->parked_modes[p] == (flags & O_ACCMODE)) {
                    fd = file->parked_fds[p];
                    file->parked_fds[p] = file->parked_fds[file->parked_count - 1];
                    file->parked_modes[p] = file->parked_modes[file->parked_count - 1];
                    file->parked_count--;
                    file->open_count++;
                    break;
                }
            }
        }
        unlock_table();
        if (fd >= 0) return fd;
    }
    fd = open(path, flags, mode);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        lock_table();
        struct tracked_file *file = find_or_add_file(st.st_dev, st.st_ino);
        if (file) file->open_count++;
        unlock_table();
    }
    return fd;
}

static int park(struct tracked_file *file, int fd) {
    if (file->parked_count == file->parked_cap) {
        int cap = file->parked_cap ? file->parked_cap * 2 : 4;
        int *fds = realloc(file->parked_fds, (size_t)cap * sizeof *fds);
        if (!fds) return 0;
        file->parked_fds = fds;
        int *modes = realloc(file->parked_modes, (size_t)cap * sizeof *modes);
        if (!modes) return 0;
        file->parked_modes = modes;
        file->parked_cap = cap;
    }
    int status = fcntl(fd, F_GETFL);
    if (status < 0) return 0;
    file->parked_fds[file->parked_count] = fd;
    file->parked_modes[file->parked_count] = status & O_ACCMODE;
    file->parked_count++;
    return 1;
}

/* SQLite's "close" system call (rule 2). */
int factstr_sqlite_close(int fd) {
    struct stat st;
    int kept = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        lock_table();
        struct tracked_file *file = find_file(st.st_dev, st.st_ino);
        if (file) {
            if (file->open_count > 0) file->open_count--;
            if (file->open_count == 0 && file->lock_fd >= 0 && !ofd_unsupported) {
                /* SQLite counts on the last close of a file to drop its locks (it never unlocks
                 * the -shm file's DMS byte itself); POSIX close did that, so do it here. */
                struct flock all = {0};
                all.l_type = F_UNLCK;
                all.l_whence = SEEK_SET;
                fcntl(file->lock_fd, F_OFD_SETLK, &all);
            }
            /* A file never locked through us has no locks of the other library to lose either
             * (SQLite locks the database and -shm files only); a deleted file cannot be opened
             * by anyone new. */
            if (file->lock_fd >= 0 && st.st_nlink > 0) kept = park(file, fd);
        }
        close_unused_files();
        unlock_table();
        if (kept) {
            /* Parked; but when nothing of ours uses the file and the other library holds no lock
             * on it, close_unused_files has just closed it for real. */
            return 0;
        }
    }
    return close(fd);
}

/* Called once, before SQLite opens anything. */
void factstr_sqlite_file_locks_init(void) {
    pthread_atfork(lock_table, unlock_table, forget_all_after_fork);
}

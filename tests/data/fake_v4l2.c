/* A fake V4L2 camera for tests, loaded with LD_PRELOAD into a posescope process.
 *
 * posescope's V4L2 capture writes the kernel ABI out by hand; this shim is compiled against the
 * real <linux/videodev2.h>, so a test through it checks those layouts and request numbers end to
 * end, and drives the whole path: listing, format negotiation, buffers, mmap, streaming, newest
 * frame, a busy device and an unplug.
 *
 * The device is the file `video0` in $POSESCOPE_V4L2_DIR (the test creates it). Opening it gives
 * a memfd that backs the buffers (so mmap needs no interception); ioctl and poll on that fd are
 * answered here, everything else goes to libc.
 *
 *   FAKE_V4L2_BUSY=1           setting the format fails with EBUSY (another program has it)
 *   FAKE_V4L2_UNPLUG_MS=N      N ms after STREAMON the device is gone (ENODEV, POLLERR)
 *
 * Frames come at 30 fps from STREAMON; a frame that finds no queued buffer is dropped, as a
 * driver does. Frame k is YUYV grey with luma 16 + (k * 7) % 200, so a reader can tell which
 * frame it got.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define NBUF_MAX 8
#define FPS 30

static int fake_fd = -1;
static struct {
  uint32_t width, height, pixfmt, sizeimage;
  uint32_t nbuf;
  int queued[NBUF_MAX];   /* 1: owned by the driver, empty */
  int done[NBUF_MAX];     /* FIFO of filled buffer indices */
  uint32_t seq_of[NBUF_MAX];
  int ndone;
  int streaming;
  double t0;
  uint64_t next_frame;    /* index of the next frame the "sensor" produces */
  uint64_t dequeued;
  int gone;
} st;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int is_device(const char *path) {
  const char *dir = getenv("POSESCOPE_V4L2_DIR");
  if (!dir || !path) return 0;
  size_t n = strlen(dir);
  return strncmp(path, dir, n) == 0 && strcmp(path + n, "/video0") == 0;
}

static int open_fake(void) {
  memset(&st, 0, sizeof st);
  st.width = 640; st.height = 480; st.pixfmt = V4L2_PIX_FMT_YUYV; st.sizeimage = 640 * 480 * 2;
  fake_fd = memfd_create("fake-v4l2", MFD_CLOEXEC);
  return fake_fd;
}

#define OPEN_WRAPPER(name)                                                     \
  int name(const char *path, int flags, ...) {                                 \
    static int (*real)(const char *, int, ...);                                \
    if (!real) real = dlsym(RTLD_NEXT, #name);                                 \
    mode_t mode = 0;                                                           \
    if (flags & (O_CREAT | O_TMPFILE)) {                                       \
      va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); \
    }                                                                          \
    if (is_device(path)) return open_fake();                                   \
    return real(path, flags, mode);                                            \
  }
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

/* Buffers start on page boundaries, as a real driver's mmap offsets do. */
static off_t buf_offset(uint32_t i) {
  off_t page = 4096, span = ((off_t)st.sizeimage + page - 1) / page * page;
  return (off_t)i * span;
}

/* The sensor: frames due by now go into queued buffers, or are dropped. */
static void produce(void) {
  if (!st.streaming) return;
  uint64_t due = (uint64_t)((now() - st.t0) * FPS) + 1;
  for (; st.next_frame < due; st.next_frame++) {
    for (uint32_t i = 0; i < st.nbuf; i++) {
      if (!st.queued[i]) continue;
      st.queued[i] = 0;
      unsigned char *p = mmap(NULL, st.sizeimage, PROT_READ | PROT_WRITE, MAP_SHARED, fake_fd,
                              buf_offset(i));
      if (p != MAP_FAILED) {
        unsigned char y = (unsigned char)(16 + (st.next_frame * 7) % 200);
        for (uint32_t k = 0; k + 3 < st.sizeimage; k += 4) {
          p[k] = y; p[k + 1] = 128; p[k + 2] = y; p[k + 3] = 128;
        }
        munmap(p, st.sizeimage);
      }
      st.seq_of[i] = (uint32_t)st.next_frame;
      st.done[st.ndone++] = (int)i;
      break;
    }
  }
}

static int fail(int e) { errno = e; return -1; }

/* The cable is pulled FAKE_V4L2_UNPLUG_MS after streaming starts. */
static void check_unplug(void) {
  const char *ms = getenv("FAKE_V4L2_UNPLUG_MS");
  if (ms && st.streaming && (now() - st.t0) * 1000.0 >= strtod(ms, NULL)) st.gone = 1;
}

static int fake_ioctl(unsigned long req, void *arg) {
  check_unplug();
  if (st.gone) return fail(ENODEV);
  switch (req) {
  case VIDIOC_QUERYCAP: {
    struct v4l2_capability *c = arg;
    memset(c, 0, sizeof *c);
    strcpy((char *)c->driver, "fake");
    strcpy((char *)c->card, "Fake Test Camera");
    strcpy((char *)c->bus_info, "platform:fake");
    c->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
    c->capabilities = c->device_caps | V4L2_CAP_DEVICE_CAPS;
    return 0;
  }
  case VIDIOC_ENUM_FMT: {
    struct v4l2_fmtdesc *d = arg;
    if (d->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || d->index > 1) return fail(EINVAL);
    d->pixelformat = d->index == 0 ? V4L2_PIX_FMT_YUYV : V4L2_PIX_FMT_MJPEG;
    strcpy((char *)d->description, d->index == 0 ? "YUYV 4:2:2" : "Motion-JPEG");
    return 0;
  }
  case VIDIOC_ENUM_FRAMESIZES: {
    struct v4l2_frmsizeenum *f = arg;
    static const uint32_t yuyv[][2] = {{640, 480}, {320, 240}};
    static const uint32_t mjpg[][2] = {{1280, 720}, {640, 480}};
    const uint32_t (*s)[2] = f->pixel_format == V4L2_PIX_FMT_YUYV ? yuyv : mjpg;
    if (f->index > 1) return fail(EINVAL);
    f->type = V4L2_FRMSIZE_TYPE_DISCRETE;
    f->discrete.width = s[f->index][0];
    f->discrete.height = s[f->index][1];
    return 0;
  }
  case VIDIOC_ENUM_FRAMEINTERVALS: {
    struct v4l2_frmivalenum *f = arg;
    /* YUYV: 30 and 15 fps; MJPG: 15 fps only (so the default is YUYV 640x480 @ 30). */
    uint32_t n = f->pixel_format == V4L2_PIX_FMT_YUYV ? 2 : 1;
    if (f->index >= n) return fail(EINVAL);
    f->type = V4L2_FRMIVAL_TYPE_DISCRETE;
    f->discrete.numerator = 1;
    f->discrete.denominator = f->index == 0 && n == 2 ? 30 : 15;
    return 0;
  }
  case VIDIOC_S_FMT: {
    struct v4l2_format *f = arg;
    if (getenv("FAKE_V4L2_BUSY")) return fail(EBUSY);
    if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return fail(EINVAL);
    /* Only YUYV frames are produced. */
    st.pixfmt = V4L2_PIX_FMT_YUYV;
    st.width = f->fmt.pix.width == 320 ? 320 : 640;
    st.height = st.width == 320 ? 240 : 480;
    st.sizeimage = st.width * st.height * 2;
    f->fmt.pix.width = st.width;
    f->fmt.pix.height = st.height;
    f->fmt.pix.pixelformat = st.pixfmt;
    f->fmt.pix.bytesperline = st.width * 2;
    f->fmt.pix.sizeimage = st.sizeimage;
    f->fmt.pix.field = V4L2_FIELD_NONE;
    return 0;
  }
  case VIDIOC_G_PARM:
  case VIDIOC_S_PARM: {
    struct v4l2_streamparm *p = arg;
    if (p->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return fail(EINVAL);
    p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
    p->parm.capture.timeperframe.numerator = 1;
    p->parm.capture.timeperframe.denominator = FPS;
    return 0;
  }
  case VIDIOC_REQBUFS: {
    struct v4l2_requestbuffers *r = arg;
    if (r->memory != V4L2_MEMORY_MMAP) return fail(EINVAL);
    st.nbuf = r->count > NBUF_MAX ? NBUF_MAX : r->count;
    r->count = st.nbuf;
    if (ftruncate(fake_fd, buf_offset(st.nbuf)) != 0) return -1;
    return 0;
  }
  case VIDIOC_QUERYBUF: {
    struct v4l2_buffer *b = arg;
    if (b->index >= st.nbuf || b->memory != V4L2_MEMORY_MMAP) return fail(EINVAL);
    b->m.offset = (uint32_t)buf_offset(b->index);
    b->length = st.sizeimage;
    return 0;
  }
  case VIDIOC_QBUF: {
    struct v4l2_buffer *b = arg;
    if (b->index >= st.nbuf || st.queued[b->index]) return fail(EINVAL);
    st.queued[b->index] = 1;
    return 0;
  }
  case VIDIOC_DQBUF: {
    struct v4l2_buffer *b = arg;
    produce();
    if (st.ndone == 0) return fail(EAGAIN);
    int i = st.done[0];
    memmove(st.done, st.done + 1, sizeof(int) * (size_t)--st.ndone);
    b->index = (uint32_t)i;
    b->bytesused = st.sizeimage;
    b->sequence = st.seq_of[i];
    b->field = V4L2_FIELD_NONE;
    st.dequeued++;
    return 0;
  }
  case VIDIOC_STREAMON:
    st.streaming = 1;
    st.t0 = now();
    return 0;
  case VIDIOC_STREAMOFF:
    st.streaming = 0;
    return 0;
  default:
    return fail(ENOTTY);
  }
}

int ioctl(int fd, unsigned long req, ...) {
  static int (*real)(int, unsigned long, ...);
  if (!real) real = dlsym(RTLD_NEXT, "ioctl");
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  if (fd == fake_fd && fd >= 0) return fake_ioctl(req, arg);
  return real(fd, req, arg);
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
  static int (*real)(struct pollfd *, nfds_t, int);
  if (!real) real = dlsym(RTLD_NEXT, "poll");
  if (n != 1 || fds[0].fd != fake_fd || fake_fd < 0) return real(fds, n, timeout);
  double deadline = now() + timeout / 1000.0;
  for (;;) {
    fds[0].revents = 0;
    check_unplug();
    if (st.gone) { fds[0].revents = POLLERR; return 1; }
    produce();
    if (st.ndone > 0) { fds[0].revents = POLLIN; return 1; }
    if (timeout >= 0 && now() >= deadline) return 0;
    usleep(2000);
  }
}

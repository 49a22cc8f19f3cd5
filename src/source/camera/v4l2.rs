//! Video4Linux2 capture written against the kernel's ABI directly (ioctl and mmap through
//! `libc`), so the default build needs no libclang and no system library: the struct layouts
//! and request numbers below are those of `<linux/videodev2.h>` on 64-bit Linux, checked
//! field by field against the C header by `scripts/check_v4l2_abi.sh` and by the size
//! assertions here.
//!
//! Only what a webcam needs: list capture devices with their formats, open one at a chosen
//! format, stream through memory-mapped buffers, and hand out the newest filled buffer.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CameraInfo, CameraMode};

// ---- ABI (videodev2.h) ----------------------------------------------------------------

const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
const MEMORY_MMAP: u32 = 1;
const FIELD_ANY: u32 = 0;
const CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
const CAP_STREAMING: u32 = 0x0400_0000;
const CAP_DEVICE_CAPS: u32 = 0x8000_0000;
const FRMSIZE_TYPE_DISCRETE: u32 = 1;
const FRMIVAL_TYPE_DISCRETE: u32 = 1;
const CAPABILITY_TIMEPERFRAME: u32 = 0x1000;

#[repr(C)]
#[derive(Clone, Copy)]
struct Capability {
    driver: [u8; 16],
    card: [u8; 32],
    bus_info: [u8; 32],
    version: u32,
    capabilities: u32,
    device_caps: u32,
    reserved: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct FmtDesc {
    index: u32,
    kind: u32,
    flags: u32,
    description: [u8; 32],
    pixelformat: u32,
    mbus_code: u32,
    reserved: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct FrmSizeEnum {
    index: u32,
    pixel_format: u32,
    kind: u32,
    /// discrete: width, height; stepwise: min_w, max_w, step_w, min_h, max_h, step_h.
    size: [u32; 6],
    reserved: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct FrmIvalEnum {
    index: u32,
    pixel_format: u32,
    width: u32,
    height: u32,
    kind: u32,
    /// discrete: numerator, denominator; stepwise: min, max, step (each a fraction).
    ival: [u32; 6],
    reserved: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct PixFormat {
    width: u32,
    height: u32,
    pixelformat: u32,
    field: u32,
    bytesperline: u32,
    sizeimage: u32,
    colorspace: u32,
    priv_: u32,
    flags: u32,
    ycbcr_enc: u32,
    quantization: u32,
    xfer_func: u32,
}

/// `struct v4l2_format`: the union is 200 bytes and 8-aligned (it holds pointers).
#[repr(C)]
#[derive(Clone, Copy)]
struct Format {
    kind: u32,
    _pad: u32,
    pix: PixFormat,
    _rest: [u8; 200 - 48],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RequestBuffers {
    count: u32,
    kind: u32,
    memory: u32,
    capabilities: u32,
    flags: u8,
    reserved: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Timeval {
    sec: i64,
    usec: i64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Buffer {
    index: u32,
    kind: u32,
    bytesused: u32,
    flags: u32,
    field: u32,
    _pad: u32,
    timestamp: Timeval,
    timecode: [u32; 4],
    sequence: u32,
    memory: u32,
    /// union { offset; userptr; planes; fd }
    m: u64,
    length: u32,
    reserved2: u32,
    request_fd: i32,
    _pad2: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CaptureParm {
    capability: u32,
    capturemode: u32,
    /// timeperframe: numerator, denominator.
    timeperframe: [u32; 2],
    extendedmode: u32,
    readbuffers: u32,
    reserved: [u32; 4],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct StreamParm {
    kind: u32,
    capture: CaptureParm,
    _rest: [u8; 200 - 40],
}

const _: () = assert!(std::mem::size_of::<Capability>() == 104);
const _: () = assert!(std::mem::size_of::<FmtDesc>() == 64);
const _: () = assert!(std::mem::size_of::<FrmSizeEnum>() == 44);
const _: () = assert!(std::mem::size_of::<FrmIvalEnum>() == 52);
const _: () = assert!(std::mem::size_of::<Format>() == 208);
const _: () = assert!(std::mem::size_of::<RequestBuffers>() == 20);
const _: () = assert!(std::mem::size_of::<Buffer>() == 88);
const _: () = assert!(std::mem::size_of::<StreamParm>() == 204);

/// `_IOC(dir, 'V', nr, size)` as the kernel computes it (asm-generic ioctl.h).
const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((b'V' as u64) << 8) | nr
}
const READ: u64 = 2;
const WRITE: u64 = 1;
const RW: u64 = READ | WRITE;
const VIDIOC_QUERYCAP: u64 = ioc(READ, 0, std::mem::size_of::<Capability>());
const VIDIOC_ENUM_FMT: u64 = ioc(RW, 2, std::mem::size_of::<FmtDesc>());
const VIDIOC_S_FMT: u64 = ioc(RW, 5, std::mem::size_of::<Format>());
const VIDIOC_REQBUFS: u64 = ioc(RW, 8, std::mem::size_of::<RequestBuffers>());
const VIDIOC_QUERYBUF: u64 = ioc(RW, 9, std::mem::size_of::<Buffer>());
const VIDIOC_QBUF: u64 = ioc(RW, 15, std::mem::size_of::<Buffer>());
const VIDIOC_DQBUF: u64 = ioc(RW, 17, std::mem::size_of::<Buffer>());
const VIDIOC_STREAMON: u64 = ioc(WRITE, 18, 4);
const VIDIOC_STREAMOFF: u64 = ioc(WRITE, 19, 4);
const VIDIOC_G_PARM: u64 = ioc(RW, 21, std::mem::size_of::<StreamParm>());
const VIDIOC_S_PARM: u64 = ioc(RW, 22, std::mem::size_of::<StreamParm>());
const VIDIOC_ENUM_FRAMESIZES: u64 = ioc(RW, 74, std::mem::size_of::<FrmSizeEnum>());
const VIDIOC_ENUM_FRAMEINTERVALS: u64 = ioc(RW, 75, std::mem::size_of::<FrmIvalEnum>());

/// A zeroed plain-old-data struct of this module (all fields are integers or arrays of them).
fn zeroed<T: Copy>() -> T {
    // SAFETY: only instantiated with the repr(C) integer-only structs above, for which the
    // all-zero bit pattern is a valid value.
    unsafe { std::mem::zeroed() }
}

/// One ioctl on `fd` with `arg`, retried on EINTR.
fn xioctl<T>(fd: RawFd, request: u64, arg: &mut T) -> io::Result<()> {
    loop {
        // SAFETY: `arg` is a live, exclusively borrowed struct whose size is the one encoded
        // in `request` (each request constant is built from the size of its struct).
        let r = unsafe { libc::ioctl(fd, request as _, arg as *mut T) };
        if r != -1 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn c_string(bytes: &[u8]) -> String {
    CStr::from_bytes_until_nul(bytes)
        .map(|c| c.to_string_lossy().trim().to_string())
        .unwrap_or_else(|_| String::from_utf8_lossy(bytes).trim().to_string())
}

// ---- listing ----------------------------------------------------------------------------

/// Where the device nodes are: `/dev`, or `$POSESCOPE_V4L2_DIR` (for tests, which put a
/// fake device there).
fn device_dir() -> PathBuf {
    std::env::var_os("POSESCOPE_V4L2_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev"))
}

/// `videoN` nodes of the device directory, in numeric order.
fn video_nodes() -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(device_dir()) else {
        return Vec::new();
    };
    let mut nodes: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("video")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    nodes.sort();
    nodes
}

/// Path of camera `index`.
pub(crate) fn device_path(index: u32) -> PathBuf {
    device_dir().join(format!("video{index}"))
}

fn open_device(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

fn query_capability(fd: RawFd) -> io::Result<Capability> {
    let mut cap: Capability = zeroed();
    xioctl(fd, VIDIOC_QUERYCAP, &mut cap)?;
    Ok(cap)
}

/// The capabilities of this node (not of the whole driver), when it says.
fn node_caps(cap: &Capability) -> u32 {
    if cap.capabilities & CAP_DEVICE_CAPS != 0 {
        cap.device_caps
    } else {
        cap.capabilities
    }
}

/// Lists the capture devices (metadata and output nodes are left out). A node that cannot be
/// opened (busy, no permission) is listed with its error in `name`, so the user sees it.
pub(crate) fn list() -> io::Result<Vec<CameraInfo>> {
    let mut cams = Vec::new();
    for (index, path) in video_nodes() {
        let file = match open_device(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                cams.push(CameraInfo {
                    index,
                    name: format!("{} (permission denied)", path.display()),
                    device: path.display().to_string(),
                    modes: Vec::new(),
                });
                continue;
            }
            Err(_) => continue,
        };
        let fd = file.as_raw_fd();
        let Ok(cap) = query_capability(fd) else {
            continue;
        };
        let caps = node_caps(&cap);
        if caps & CAP_VIDEO_CAPTURE == 0 || caps & CAP_STREAMING == 0 {
            continue;
        }
        let card = c_string(&cap.card);
        cams.push(CameraInfo {
            index,
            name: if card.is_empty() {
                path.display().to_string()
            } else {
                card
            },
            device: path.display().to_string(),
            modes: modes(fd),
        });
    }
    Ok(cams)
}

/// Every (format, size, frame rate) the device offers, for formats this module decodes.
fn modes(fd: RawFd) -> Vec<CameraMode> {
    let mut out = Vec::new();
    for index in 0..64 {
        let mut desc: FmtDesc = zeroed();
        desc.index = index;
        desc.kind = BUF_TYPE_VIDEO_CAPTURE;
        if xioctl(fd, VIDIOC_ENUM_FMT, &mut desc).is_err() {
            break;
        }
        if !super::convert::decodable(desc.pixelformat) {
            continue;
        }
        for (w, h) in frame_sizes(fd, desc.pixelformat) {
            let rates = frame_rates(fd, desc.pixelformat, w, h);
            if rates.is_empty() {
                out.push(CameraMode::new(desc.pixelformat, w, h, None));
            }
            for fps in rates {
                out.push(CameraMode::new(desc.pixelformat, w, h, Some(fps)));
            }
        }
    }
    out
}

/// Common sizes offered for devices that describe a continuous range.
const STEPWISE_SIZES: &[(u32, u32)] = &[(320, 240), (640, 480), (1280, 720), (1920, 1080)];

fn frame_sizes(fd: RawFd, pixel_format: u32) -> Vec<(u32, u32)> {
    let mut sizes = Vec::new();
    for index in 0..128 {
        let mut e: FrmSizeEnum = zeroed();
        e.index = index;
        e.pixel_format = pixel_format;
        if xioctl(fd, VIDIOC_ENUM_FRAMESIZES, &mut e).is_err() {
            break;
        }
        if e.kind == FRMSIZE_TYPE_DISCRETE {
            sizes.push((e.size[0], e.size[1]));
        } else {
            let [min_w, max_w, _, min_h, max_h, _] = e.size;
            sizes.extend(
                STEPWISE_SIZES
                    .iter()
                    .copied()
                    .filter(|&(w, h)| (min_w..=max_w).contains(&w) && (min_h..=max_h).contains(&h)),
            );
            break;
        }
    }
    sizes
}

fn frame_rates(fd: RawFd, pixel_format: u32, width: u32, height: u32) -> Vec<f64> {
    let mut rates = Vec::new();
    for index in 0..64 {
        let mut e: FrmIvalEnum = zeroed();
        e.index = index;
        e.pixel_format = pixel_format;
        e.width = width;
        e.height = height;
        if xioctl(fd, VIDIOC_ENUM_FRAMEINTERVALS, &mut e).is_err() {
            break;
        }
        let rate = |num: u32, den: u32| (num > 0).then(|| f64::from(den) / f64::from(num));
        if e.kind == FRMIVAL_TYPE_DISCRETE {
            rates.extend(rate(e.ival[0], e.ival[1]));
        } else {
            // Continuous or stepwise: offer the fastest and the slowest interval.
            rates.extend(rate(e.ival[0], e.ival[1]));
            rates.extend(rate(e.ival[2], e.ival[3]));
            break;
        }
    }
    rates.sort_by(|a, b| b.total_cmp(a));
    rates.dedup_by(|a, b| (*a - *b).abs() < 0.01);
    rates
}

// ---- streaming --------------------------------------------------------------------------

/// One memory-mapped driver buffer.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned for this buffer; it is unmapped
        // once, here.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// An open, streaming capture device.
pub(crate) struct Device {
    // Field order matters: buffers are unmapped before the file is closed.
    buffers: Vec<Mapped>,
    file: File,
    streaming: bool,
    /// The buffer handed out by the last [`Device::next`], queued again at the next call.
    pending: Option<u32>,
    /// The negotiated format.
    pub mode: CameraMode,
    pub name: String,
    bytes_per_line: u32,
}

// SAFETY: the mapped buffers are owned by this struct alone and only read through `&mut self`
// (`next`); nothing else aliases them, so moving the device to another thread is sound.
#[allow(unsafe_code)]
unsafe impl Send for Device {}

/// Why a device could not be opened or read: the OS error, and the step that failed.
#[derive(Debug)]
pub(crate) struct DeviceError {
    pub step: &'static str,
    pub error: io::Error,
}

impl DeviceError {
    fn at(step: &'static str) -> impl FnOnce(io::Error) -> DeviceError {
        move |error| DeviceError { step, error }
    }
}

/// A filled buffer, borrowed until the next call.
pub(crate) struct Filled<'a> {
    pub data: &'a [u8],
    pub sequence: u32,
}

impl Device {
    /// Opens `path` at `mode` (the driver may adjust it; [`Device::mode`] is what it chose).
    pub(crate) fn open(path: &Path, mode: &CameraMode) -> Result<Device, DeviceError> {
        let file = open_device(path).map_err(DeviceError::at("open"))?;
        let fd = file.as_raw_fd();
        let cap = query_capability(fd).map_err(DeviceError::at("query capabilities"))?;
        let caps = node_caps(&cap);
        if caps & CAP_VIDEO_CAPTURE == 0 || caps & CAP_STREAMING == 0 {
            return Err(DeviceError {
                step: "open",
                error: io::Error::other("not a streaming video capture device"),
            });
        }
        let mut fmt: Format = zeroed();
        fmt.kind = BUF_TYPE_VIDEO_CAPTURE;
        fmt.pix.width = mode.width;
        fmt.pix.height = mode.height;
        fmt.pix.pixelformat = mode.fourcc;
        fmt.pix.field = FIELD_ANY;
        xioctl(fd, VIDIOC_S_FMT, &mut fmt).map_err(DeviceError::at("set the format"))?;
        let mut chosen = CameraMode::new(fmt.pix.pixelformat, fmt.pix.width, fmt.pix.height, None);
        chosen.fps = set_frame_rate(fd, mode.fps);
        let mut dev = Device {
            buffers: Vec::new(),
            file,
            streaming: false,
            pending: None,
            mode: chosen,
            name: c_string(&cap.card),
            bytes_per_line: fmt.pix.bytesperline,
        };
        dev.map_buffers(4)?;
        for i in 0..dev.buffers.len() {
            dev.queue(i as u32)
                .map_err(DeviceError::at("queue a buffer"))?;
        }
        let mut kind = BUF_TYPE_VIDEO_CAPTURE;
        xioctl(fd, VIDIOC_STREAMON, &mut kind).map_err(DeviceError::at("start streaming"))?;
        dev.streaming = true;
        Ok(dev)
    }

    /// Row stride of packed formats, in bytes (0 when the driver did not say).
    pub(crate) fn bytes_per_line(&self) -> u32 {
        self.bytes_per_line
    }

    fn map_buffers(&mut self, count: u32) -> Result<(), DeviceError> {
        let fd = self.file.as_raw_fd();
        let mut req: RequestBuffers = zeroed();
        req.count = count;
        req.kind = BUF_TYPE_VIDEO_CAPTURE;
        req.memory = MEMORY_MMAP;
        xioctl(fd, VIDIOC_REQBUFS, &mut req).map_err(DeviceError::at("request buffers"))?;
        if req.count == 0 {
            return Err(DeviceError {
                step: "request buffers",
                error: io::Error::other("the driver granted no buffers"),
            });
        }
        for index in 0..req.count {
            let mut buf: Buffer = zeroed();
            buf.index = index;
            buf.kind = BUF_TYPE_VIDEO_CAPTURE;
            buf.memory = MEMORY_MMAP;
            xioctl(fd, VIDIOC_QUERYBUF, &mut buf).map_err(DeviceError::at("query a buffer"))?;
            let len = buf.length as usize;
            // SAFETY: maps the driver buffer at the offset the driver gave for it, with its
            // length; the result is checked against MAP_FAILED before use.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    buf.m as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(DeviceError {
                    step: "map a buffer",
                    error: io::Error::last_os_error(),
                });
            }
            self.buffers.push(Mapped { ptr, len });
        }
        Ok(())
    }

    fn queue(&self, index: u32) -> io::Result<()> {
        let mut buf: Buffer = zeroed();
        buf.index = index;
        buf.kind = BUF_TYPE_VIDEO_CAPTURE;
        buf.memory = MEMORY_MMAP;
        xioctl(self.file.as_raw_fd(), VIDIOC_QBUF, &mut buf)
    }

    /// Dequeues one filled buffer without waiting; `Ok(None)` when none is ready.
    fn try_dequeue(&self) -> io::Result<Option<Buffer>> {
        let mut buf: Buffer = zeroed();
        buf.kind = BUF_TYPE_VIDEO_CAPTURE;
        buf.memory = MEMORY_MMAP;
        match xioctl(self.file.as_raw_fd(), VIDIOC_DQBUF, &mut buf) {
            Ok(()) => Ok(Some(buf)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits up to `timeout` for the device to have a filled buffer.
    fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        loop {
            // SAFETY: one valid pollfd, count 1.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r >= 0 {
                if pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                    return Err(io::Error::from_raw_os_error(libc::ENODEV));
                }
                return Ok(r > 0);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// The newest filled buffer: waits up to `timeout` for one, then takes every buffer that
    /// is ready and gives back all but the newest (so a slow reader always sees the latest
    /// picture, never a backlog). `Ok(None)` on timeout.
    pub(crate) fn next(&mut self, timeout: Duration) -> io::Result<Option<Filled<'_>>> {
        if let Some(previous) = self.pending.take() {
            self.queue(previous)?;
        }
        if !self.wait(timeout)? {
            return Ok(None);
        }
        let Some(mut newest) = self.try_dequeue()? else {
            return Ok(None);
        };
        while let Some(newer) = self.try_dequeue()? {
            self.queue(newest.index)?;
            newest = newer;
        }
        let index = newest.index as usize;
        let Some(mapped) = self.buffers.get(index) else {
            return Err(io::Error::other(format!(
                "the driver returned buffer {index} of {}",
                self.buffers.len()
            )));
        };
        let used = (newest.bytesused as usize).min(mapped.len);
        self.pending = Some(newest.index);
        // SAFETY: the buffer is dequeued (the driver does not write it until it is queued
        // again, which happens only at the next call, after this borrow of `self` ends), and
        // `used` is within its mapped length.
        let data = unsafe { std::slice::from_raw_parts(mapped.ptr as *const u8, used) };
        Ok(Some(Filled {
            data,
            sequence: newest.sequence,
        }))
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if self.streaming {
            let mut kind = BUF_TYPE_VIDEO_CAPTURE;
            let _ = xioctl(self.file.as_raw_fd(), VIDIOC_STREAMOFF, &mut kind);
        }
    }
}

/// Asks for `fps` (when given and the driver allows it); returns the rate in force.
fn set_frame_rate(fd: RawFd, fps: Option<f64>) -> Option<f64> {
    let mut parm: StreamParm = zeroed();
    parm.kind = BUF_TYPE_VIDEO_CAPTURE;
    xioctl(fd, VIDIOC_G_PARM, &mut parm).ok()?;
    if let Some(fps) = fps.filter(|f| *f > 0.0) {
        if parm.capture.capability & CAPABILITY_TIMEPERFRAME != 0 {
            parm.capture.timeperframe = [1000, (fps * 1000.0).round() as u32];
            let _ = xioctl(fd, VIDIOC_S_PARM, &mut parm);
        }
    }
    let [num, den] = parm.capture.timeperframe;
    (num > 0 && den > 0).then(|| f64::from(den) / f64::from(num))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request numbers as `<linux/videodev2.h>` defines them on x86_64 and aarch64
    /// (printed from the header by `scripts/check_v4l2_abi.sh`).
    #[test]
    fn request_numbers_match_the_kernel_header() {
        let expected: &[(u64, u64)] = &[
            (VIDIOC_QUERYCAP, 0x8068_5600),
            (VIDIOC_ENUM_FMT, 0xc040_5602),
            (VIDIOC_ENUM_FRAMESIZES, 0xc02c_564a),
            (VIDIOC_ENUM_FRAMEINTERVALS, 0xc034_564b),
            (VIDIOC_S_FMT, 0xc0d0_5605),
            (VIDIOC_REQBUFS, 0xc014_5608),
            (VIDIOC_QUERYBUF, 0xc058_5609),
            (VIDIOC_QBUF, 0xc058_560f),
            (VIDIOC_DQBUF, 0xc058_5611),
            (VIDIOC_STREAMON, 0x4004_5612),
            (VIDIOC_STREAMOFF, 0x4004_5613),
            (VIDIOC_S_PARM, 0xc0cc_5616),
            (VIDIOC_G_PARM, 0xc0cc_5615),
        ];
        for (i, (got, want)) in expected.iter().enumerate() {
            assert_eq!(got, want, "request {i}: {got:#x} != {want:#x}");
        }
    }

    #[test]
    fn buffer_field_offsets_match_the_kernel_header() {
        let b: Buffer = zeroed();
        let base = &b as *const Buffer as usize;
        let off = |p: *const u8| p as usize - base;
        assert_eq!(off(&b.timestamp as *const _ as *const u8), 24);
        assert_eq!(off(&b.sequence as *const _ as *const u8), 56);
        assert_eq!(off(&b.memory as *const _ as *const u8), 60);
        assert_eq!(off(&b.m as *const _ as *const u8), 64);
        assert_eq!(off(&b.length as *const _ as *const u8), 72);
        let f: Format = zeroed();
        let base = &f as *const Format as usize;
        assert_eq!(&f.pix as *const _ as usize - base, 8);
    }

    #[test]
    fn a_missing_node_is_an_open_error() {
        let mode = CameraMode::new(super::super::convert::YUYV, 640, 480, None);
        let err = Device::open(Path::new("/dev/video-not-here-97"), &mode)
            .err()
            .map(|e| (e.step, e.error.kind()));
        assert_eq!(err, Some(("open", io::ErrorKind::NotFound)));
    }
}

//! A dry run of a pickle before candle's `candle_core::pickle::Stack` builds it.
//!
//! candle's machine trusts its input: `BINUNICODE` allocates whatever length the file
//! claims, `LONG1` overflows a shift for more than 8 bytes, and every `BINGET`/`BINPUT`
//! deep-copies an object, so a few bytes can ask for gigabytes. [`scan`] walks the same
//! opcodes (exactly the set candle knows, with its stack effects) but keeps only a size
//! estimate and a nesting depth per stack item. It checks that every argument lies inside
//! the input, that the copies stay within a budget proportional to the pickle's length,
//! and that nesting stays shallow (candle's objects are dropped recursively), and it
//! returns where the pickle ends (after `STOP`). The legacy format needs that boundary:
//! it is several pickles back to back, followed by raw storage bytes.

use std::collections::HashMap;

/// Deepest nesting of containers accepted (a state dict is about 5 levels deep).
const MAX_DEPTH: u32 = 100;

/// Approximate bytes one unpickled object costs (candle's `Object` plus allocation).
const NODE_COST: u64 = 64;

/// What building and copying objects may cost per pickle byte. Real state dicts spend
/// about 66 (MMPose's HigherHRNet-W8 checkpoint: 19.2 MB for its 292 kB `data.pkl`, and
/// the same for its legacy twin): most objects are built once, and candle copies the
/// memoized tuples of each tensor.
const COST_PER_BYTE: u64 = 4 * NODE_COST;

/// And a fixed allowance on top, for small pickles.
const COPY_ALLOWANCE: u64 = 256 << 20;

#[derive(Debug, Clone, Copy)]
struct Item {
    /// Estimated bytes of the object and everything inside it.
    cost: u64,
    /// Nesting depth (1 for a scalar).
    depth: u32,
    /// A MARK (candle keeps it on the stack as `Object::Mark`).
    mark: bool,
}

impl Item {
    fn leaf(extra: u64) -> Self {
        Self {
            cost: NODE_COST.saturating_add(extra),
            depth: 1,
            mark: false,
        }
    }

    fn parent_of(items: &[Item]) -> Self {
        let cost = items
            .iter()
            .fold(NODE_COST, |acc, i| acc.saturating_add(i.cost));
        let depth = items.iter().map(|i| i.depth).max().unwrap_or(0) + 1;
        Self {
            cost,
            depth,
            mark: false,
        }
    }

    /// Adds `items` to this container (APPEND, SETITEM, ...).
    fn absorb(&mut self, items: &[Item]) {
        for i in items {
            self.cost = self.cost.saturating_add(i.cost);
            self.depth = self.depth.max(i.depth + 1);
        }
    }
}

struct Machine<'a> {
    bytes: &'a [u8],
    start: usize,
    pos: usize,
    stack: Vec<Item>,
    memo: HashMap<u32, Item>,
    /// Estimated bytes allocated so far.
    spent: u64,
}

/// Checks the pickle that starts at `bytes[start]` and returns the index just past its
/// `STOP` opcode. Errors give positions as indices into `bytes`.
pub(super) fn scan(bytes: &[u8], start: usize) -> Result<usize, String> {
    let mut m = Machine {
        bytes,
        start,
        pos: start,
        stack: Vec::new(),
        memo: HashMap::new(),
        spent: 0,
    };
    loop {
        let at = m.pos;
        let op = m.take(1, at)?[0];
        if m.step(op, at)? {
            return Ok(m.pos);
        }
    }
}

impl<'a> Machine<'a> {
    /// The next `n` bytes, for the opcode at `at`.
    fn take(&mut self, n: usize, at: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None if self.pos == at => Err(format!(
                "the pickle starting at byte {} ends at byte {} without its STOP opcode",
                self.start,
                self.bytes.len()
            )),
            None => Err(format!(
                "the argument of the opcode at byte {at} runs past the end of the data \
                 ({n} bytes wanted at byte {}, {} available)",
                self.pos,
                self.bytes.len() - self.pos
            )),
        }
    }

    fn u8(&mut self, at: usize) -> Result<u8, String> {
        Ok(self.take(1, at)?[0])
    }

    fn u32(&mut self, at: usize) -> Result<u32, String> {
        let b = self.take(4, at)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A GLOBAL argument: bytes up to a newline.
    fn line(&mut self, at: usize) -> Result<usize, String> {
        let rest = &self.bytes[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(n)
            }
            None => Err(format!(
                "the GLOBAL opcode at byte {at} has no terminating newline"
            )),
        }
    }

    fn pop(&mut self, at: usize) -> Result<Item, String> {
        self.stack
            .pop()
            .ok_or_else(|| format!("the opcode at byte {at} pops an empty stack"))
    }

    fn pop_to_mark(&mut self, at: usize) -> Result<Vec<Item>, String> {
        let Some(mark) = self.stack.iter().rposition(|i| i.mark) else {
            return Err(format!(
                "the opcode at byte {at} finds no MARK on the stack"
            ));
        };
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn last(&mut self, at: usize) -> Result<&mut Item, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| format!("the opcode at byte {at} needs a container on the stack"))
    }

    /// Accounts for `item` being created (or copied) and pushes it.
    fn push(&mut self, item: Item, at: usize) -> Result<(), String> {
        self.spend(item.cost, at)?;
        self.check_depth(item.depth, at)?;
        self.stack.push(item);
        Ok(())
    }

    fn spend(&mut self, cost: u64, at: usize) -> Result<(), String> {
        self.spent = self.spent.saturating_add(cost);
        let read = (self.pos - self.start) as u64;
        let budget = read
            .saturating_mul(COST_PER_BYTE)
            .saturating_add(COPY_ALLOWANCE);
        if self.spent > budget {
            return Err(format!(
                "the pickle copies its objects too often (about {} MB by byte {at}); \
                 refusing it",
                self.spent >> 20
            ));
        }
        Ok(())
    }

    fn check_depth(&self, depth: u32, at: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "objects nested more than {MAX_DEPTH} levels deep at byte {at}"
            ));
        }
        Ok(())
    }

    /// Grows the container on top of the stack by `items`.
    fn add_to_last(&mut self, items: &[Item], at: usize) -> Result<(), String> {
        let last = self.last(at)?;
        last.absorb(items);
        let depth = last.depth;
        self.check_depth(depth, at)
    }

    /// Runs one opcode; `Ok(true)` at STOP.
    fn step(&mut self, op: u8, at: usize) -> Result<bool, String> {
        match op {
            // PROTO
            0x80 => {
                self.u8(at)?;
            }
            // GLOBAL module\nname\n
            b'c' => {
                let a = self.line(at)?;
                let b = self.line(at)?;
                self.push(Item::leaf((a + b) as u64), at)?;
            }
            // BININT1, BININT2, BININT
            b'K' => {
                self.take(1, at)?;
                self.push(Item::leaf(0), at)?;
            }
            b'M' => {
                self.take(2, at)?;
                self.push(Item::leaf(0), at)?;
            }
            b'J' => {
                self.take(4, at)?;
                self.push(Item::leaf(0), at)?;
            }
            // BINFLOAT
            b'G' => {
                self.take(8, at)?;
                self.push(Item::leaf(0), at)?;
            }
            // LONG1: candle decodes at most 8 bytes correctly.
            0x8a => {
                let n = self.u8(at)?;
                if n > 8 {
                    return Err(format!(
                        "the LONG1 integer at byte {at} has {n} bytes (at most 8 are supported)"
                    ));
                }
                self.take(usize::from(n), at)?;
                self.push(Item::leaf(0), at)?;
            }
            // BINUNICODE
            b'X' => {
                let n = self.u32(at)? as usize;
                if n > self.bytes.len() - self.pos {
                    return Err(format!(
                        "the string at byte {at} claims {n} bytes but only {} follow",
                        self.bytes.len() - self.pos
                    ));
                }
                self.take(n, at)?;
                self.push(Item::leaf(n as u64), at)?;
            }
            // EMPTY_TUPLE, NEWTRUE, NEWFALSE, NONE, EMPTY_DICT, DICT (candle: an empty
            // dict, the MARK stays), EMPTY_LIST
            b')' | 0x88 | 0x89 | b'N' | b'}' | b'd' | b']' => self.push(Item::leaf(0), at)?,
            // MARK
            b'(' => self.push(
                Item {
                    mark: true,
                    ..Item::leaf(0)
                },
                at,
            )?,
            // TUPLE
            b't' => {
                let items = self.pop_to_mark(at)?;
                self.push(Item::parent_of(&items), at)?;
            }
            // TUPLE1..3
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if self.stack.len() < n {
                    return Err(format!("the opcode at byte {at} pops an empty stack"));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push(Item::parent_of(&items), at)?;
            }
            // BINPERSID
            b'Q' => {
                let id = self.pop(at)?;
                self.push(Item::parent_of(&[id]), at)?;
            }
            // REDUCE, BUILD, NEWOBJ: two objects become one.
            b'R' | b'b' | 0x81 => {
                let second = self.pop(at)?;
                let first = self.pop(at)?;
                self.push(Item::parent_of(&[first, second]), at)?;
            }
            // APPEND
            b'a' => {
                let v = self.pop(at)?;
                self.add_to_last(&[v], at)?;
            }
            // SETITEM
            b's' => {
                let v = self.pop(at)?;
                let k = self.pop(at)?;
                self.add_to_last(&[k, v], at)?;
            }
            // APPENDS
            b'e' => {
                let items = self.pop_to_mark(at)?;
                self.add_to_last(&items, at)?;
            }
            // SETITEMS
            b'u' => {
                let items = self.pop_to_mark(at)?;
                if items.len() % 2 != 0 {
                    return Err(format!(
                        "SETITEMS at byte {at} has an odd number of objects"
                    ));
                }
                self.add_to_last(&items, at)?;
            }
            // BINPUT, LONG_BINPUT: candle stores a copy.
            b'q' | b'r' => {
                let id = if op == b'q' {
                    u32::from(self.u8(at)?)
                } else {
                    self.u32(at)?
                };
                let item = *self.last(at)?;
                self.spend(item.cost, at)?;
                self.memo.insert(id, item);
            }
            // BINGET, LONG_BINGET: candle pushes a copy.
            b'h' | b'j' => {
                let id = if op == b'h' {
                    u32::from(self.u8(at)?)
                } else {
                    self.u32(at)?
                };
                let item = *self
                    .memo
                    .get(&id)
                    .ok_or_else(|| format!("the opcode at byte {at} reads memo {id}, never set"))?;
                self.push(item, at)?;
            }
            // STOP
            b'.' => {
                if self.stack.is_empty() {
                    return Err(format!("the pickle stops at byte {at} with nothing on it"));
                }
                return Ok(true);
            }
            other => {
                let printable = if other.is_ascii_graphic() {
                    format!(" '{}'", other as char)
                } else {
                    String::new()
                };
                return Err(format!(
                    "unsupported pickle opcode 0x{other:02x}{printable} at byte {at} \
                     (only pickle protocol 2 as torch.save writes it is read)"
                ));
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_each_pickle() {
        // 1001, then {'a': True}, then junk.
        let mut b = vec![0x80, 0x02, b'M', 0xe9, 0x03, b'.'];
        let second = b.len();
        b.extend_from_slice(&[0x80, 0x02, b'}', b'q', 0, b'X', 1, 0, 0, 0, b'a', 0x88]);
        b.extend_from_slice(&[b's', b'.', 0xff, 0xff]);
        assert_eq!(scan(&b, 0), Ok(second));
        assert_eq!(scan(&b, second), Ok(b.len() - 2));
    }

    #[test]
    fn refuses_lengths_past_the_end_and_big_integers() {
        let b = [0x80, 0x02, b'X', 0xff, 0xff, 0xff, 0xff, b'a', b'.'];
        let e = scan(&b, 0).unwrap_err();
        assert!(e.contains("claims 4294967295 bytes"), "{e}");
        let b = [0x80, 0x02, 0x8a, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, b'.'];
        assert!(scan(&b, 0).unwrap_err().contains("LONG1"));
        let b = [0x80, 0x02, b'K'];
        assert!(scan(&b, 0).unwrap_err().contains("runs past the end"));
        let b = [0x80, 0x02, b'N'];
        assert!(scan(&b, 0).unwrap_err().contains("without its STOP"));
        let b = [b'c', b'a', b'\n', b'b'];
        assert!(scan(&b, 0).unwrap_err().contains("newline"));
        assert!(scan(b".", 0).unwrap_err().contains("nothing on it"));
        assert!(scan(b"t", 0).unwrap_err().contains("MARK"));
        assert!(scan(&[b'h', 3], 0).unwrap_err().contains("memo 3"));
        assert!(scan(&[b'U', 1, b'a', b'.'], 0)
            .unwrap_err()
            .contains("unsupported pickle opcode 0x55 'U'"));
    }

    #[test]
    fn refuses_exponential_copies_and_deep_nesting() {
        // l = []; repeat: l = [l, l] via BINGET, ~4 bytes per doubling.
        let mut b = vec![b']', b'q', 0];
        for _ in 0..64 {
            b.extend_from_slice(&[b']', b'h', 0, b'a', b'h', 0, b'a', b'q', 0]);
        }
        b.push(b'.');
        let e = scan(&b, 0).unwrap_err();
        assert!(e.contains("copies its objects too often"), "{e}");

        let mut b = vec![b']'; 200];
        b.extend(std::iter::repeat_n(b'a', 199));
        b.push(b'.');
        let e = scan(&b, 0).unwrap_err();
        assert!(e.contains("nested more than"), "{e}");
    }
}

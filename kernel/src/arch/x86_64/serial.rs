//! The 16550 UART on COM1: the kernel console.
//!
//! Output only, polled. Interrupt-driven input belongs to a user-space console driver.

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;

pub struct Serial {
    data: Port<u8>,
    line_status: Port<u8>,
}

impl Serial {
    /// Programs COM1 for 115200 baud, 8N1, FIFOs on, interrupts off.
    pub fn init() -> Self {
        let registers = [
            (1, 0x00), // interrupts off
            (3, 0x80), // DLAB on
            (0, 0x01), // divisor 1: 115200 baud
            (1, 0x00),
            (3, 0x03), // 8 bits, no parity, one stop bit, DLAB off
            (2, 0xc7), // FIFO on, cleared, 14-byte threshold
            (4, 0x03), // DTR, RTS
        ];
        for (offset, value) in registers {
            let mut port = Port::<u8>::new(COM1 + offset);
            // SAFETY: COM1 is the standard UART on every PC platform we boot on; these
            // writes only configure it and touch no memory.
            unsafe { port.write(value) };
        }
        Serial { data: Port::new(COM1), line_status: Port::new(COM1 + 5) }
    }

    pub fn write_byte(&mut self, byte: u8) {
        // SAFETY: reading the line-status register has no side effects.
        while unsafe { self.line_status.read() } & 0x20 == 0 {
            core::hint::spin_loop();
        }
        // SAFETY: the transmit holding register is empty (checked above).
        unsafe { self.data.write(byte) };
    }
}

impl core::fmt::Write for Serial {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}

//! The 16550 UART on COM1: the kernel console.
//!
//! Output polled. Input is read by the holder of the console's read right
//! (`ConsoleRead`); its arrival raises IRQ 4 once the reader asks for it
//! ([`Serial::enable_receive_interrupt`]).

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
            // FIFO on, cleared, receive interrupt at 1 byte: a keystroke wakes its reader at
            // once rather than after the FIFO's character timeout.
            (2, 0x07),
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

    /// The next received byte, if one is waiting.
    pub fn read_byte(&mut self) -> Option<u8> {
        // SAFETY: reading the line-status register has no side effects.
        let ready = unsafe { self.line_status.read() } & 0x01 != 0;
        // SAFETY: data is ready (checked above); reading the receive buffer takes it.
        ready.then(|| unsafe { self.data.read() })
    }

    /// Raise IRQ 4 when a byte arrives (and only then: no transmit interrupts, since
    /// output stays polled).
    pub fn enable_receive_interrupt(&mut self) {
        let mut interrupt_enable = Port::<u8>::new(COM1 + 1);
        let mut modem_control = Port::<u8>::new(COM1 + 4);
        // SAFETY: configuring COM1's interrupt sources touches no memory; the kernel owns
        // COM1 and IRQ 4 is routed to the kernel's own handler (`irq::handle`).
        unsafe { interrupt_enable.write(0x01) };
        // SAFETY: as above; OUT2 gates the UART's interrupt line on PC hardware.
        unsafe { modem_control.write(0x0b) };
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

-- pixel_feeder: the whole-network bench's pixel driver in VHDL (simulation only, never
-- synthesized; nothing in rtl/ knows it).
--
-- Why: driven from Python, the pixel stream woke the cocotb scheduler once per clock
-- (784 times per image at P = 1), about half of the simulation's CPU time. Here the bench
-- hands over a whole image at once (load_*, a valid/ready handshake per image) and the
-- feeder streams its beats on s_* at one per clock, exactly as the Python driver did:
-- s_valid stays '1' from an image's first beat to its last, and the next image's first
-- beat follows in the clock after the last one was accepted (two image slots: the one
-- being streamed and the next one), so the cycle counts and the initiation interval are
-- those of the Python driver.
--
-- first_taken is '1' in the clock after the one in which an image's first beat was
-- accepted (a register, so the bench sees it at the time of that clock edge): the start
-- of the image's latency count.
library ieee;
use ieee.std_logic_1164.all;

entity pixel_feeder is
  generic (
    BEATS     : positive := 784;  -- beats per image
    BEAT_BITS : positive := 8     -- bits per beat (P pixels of 8 bits)
  );
  port (
    clk         : in  std_logic;
    rst         : in  std_logic;
    -- one image, beat j at bits [(j+1)*BEAT_BITS-1 : j*BEAT_BITS]; taken in a clock where
    -- load_valid and load_ready are both '1'
    load_valid  : in  std_logic;
    load_ready  : out std_logic := '0';
    load_data   : in  std_logic_vector(BEATS * BEAT_BITS - 1 downto 0);
    s_valid     : out std_logic := '0';
    s_ready     : in  std_logic;
    s_data      : out std_logic_vector(BEAT_BITS - 1 downto 0) := (others => '0');
    first_taken : out std_logic := '0'
  );
end entity pixel_feeder;

architecture sim of pixel_feeder is
begin
  -- Variables for the image slots: copied once per image, never signal updates per bit.
  p_feed : process (clk)
    variable cur, nxt   : std_logic_vector(BEATS * BEAT_BITS - 1 downto 0);
    variable cur_full   : boolean := false;
    variable nxt_full   : boolean := false;
    variable idx        : natural range 0 to BEATS - 1 := 0;
  begin
    if rising_edge(clk) then
      first_taken <= '0';
      -- the beat on s_* (this clock's, decided at the previous edge) is taken
      if cur_full and s_ready = '1' then
        if idx = 0 then
          first_taken <= '1';
        end if;
        if idx = BEATS - 1 then
          idx      := 0;
          cur_full := nxt_full;
          cur      := nxt;
          nxt_full := false;
        else
          idx := idx + 1;
        end if;
      end if;
      -- an image offered while load_ready was '1' (the signal: its value before this edge,
      -- as the bench saw it; nxt_full may have just changed above)
      if load_valid = '1' and load_ready = '1' then
        if cur_full then
          nxt      := load_data;
          nxt_full := true;
        else
          cur      := load_data;
          cur_full := true;
        end if;
      end if;
      if rst = '1' then
        cur_full := false;
        nxt_full := false;
        idx      := 0;
        first_taken <= '0';
      end if;
      load_ready <= '0' when nxt_full or rst = '1' else '1';
      s_valid    <= '1' when cur_full else '0';
      if cur_full then
        s_data <= cur((idx + 1) * BEAT_BITS - 1 downto idx * BEAT_BITS);
      end if;
    end if;
  end process p_feed;
end architecture sim;

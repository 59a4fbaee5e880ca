-- axis_framer: cuts an AXI4-Stream of pixel beats into images of exactly BEATS beats for
-- the network, whatever tlast says, and resynchronises on tlast (docs/integration.md).
-- BATCH = false: a packet (beats up to and including tlast) is one image.
--   * tlast on beat BEATS-1 (counted from 0): a well-formed image, flag '0'.
--   * tlast earlier (short packet): the image is completed with zero beats while
--     s_tready is held '0'; flag '1'.
--   * no tlast on beat BEATS-1 (long packet): the image ends there, flag '1', and every
--     further beat up to and including the next tlast is accepted and dropped.
--   So each packet gives exactly one image, hence one result.
-- BATCH = true: a packet is a batch of images back to back (one DMA transfer); every
--   BEATS beats make an image, tlast ends the batch. A tlast inside an image completes
--   it with zero beats as above (flag '1'). img_last marks the batch's last image.
-- The first beat of an image is taken only while credit_ok = '1' (see credit_counter);
-- start pulses when it is, img_end (with img_flag, img_last) when the image's last beat
-- (real or padding) enters the network.
library ieee;
use ieee.std_logic_1164.all;

entity axis_framer is
  generic (
    BEATS      : positive := 784;  -- beats per image
    DATA_BITS  : positive := 8;    -- bits per beat
    BATCH      : boolean  := false -- tlast ends a batch of images, not each image
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    -- from the AXI4-Stream slave port
    s_tvalid  : in  std_logic;
    s_tready  : out std_logic;
    s_tdata   : in  std_logic_vector(DATA_BITS - 1 downto 0);
    s_tlast   : in  std_logic;
    -- to the network's pixel input
    x_valid   : out std_logic;
    x_ready   : in  std_logic;
    x_data    : out std_logic_vector(DATA_BITS - 1 downto 0);
    -- image bookkeeping
    credit_ok : in  std_logic;
    start     : out std_logic;
    img_end   : out std_logic;
    img_flag  : out std_logic;
    img_last  : out std_logic
  );
end entity axis_framer;

architecture rtl of axis_framer is
  type mode_t is (PASS, PAD, DROP);
  signal mode : mode_t := PASS;
  signal beat : natural range 0 to BEATS - 1 := 0;
  signal open_ok : std_logic;  -- PASS may present a beat: mid-image, or credit for a new one
  signal taken   : std_logic;  -- a beat enters the network this clock
begin
  open_ok <= '1' when beat /= 0 or credit_ok = '1' else '0';

  -- tvalid never depends on tready (AXI): x_valid follows s_tvalid, s_tready follows x_ready
  x_valid  <= s_tvalid and open_ok when mode = PASS else
              '1'                  when mode = PAD  else '0';
  x_data   <= s_tdata when mode = PASS else (others => '0');
  s_tready <= x_ready and open_ok when mode = PASS else
              '1'                 when mode = DROP else '0';

  taken    <= (s_tvalid and open_ok and x_ready) when mode = PASS else
              x_ready                              when mode = PAD  else '0';
  start    <= taken when mode = PASS and beat = 0 else '0';
  img_end  <= taken when beat = BEATS - 1 else '0';
  img_flag <= '1' when mode = PAD or (not BATCH and s_tlast = '0') else '0';
  img_last <= '1' when mode = PAD or s_tlast = '1' or not BATCH else '0';

  -- if/elsif rather than a case on mode: GHDL's Verilog output of a case on this
  -- three-value type leaves the unused encoding open, and yosys then infers a latch
  p_frame : process (clk)
  begin
    if rising_edge(clk) then
      if taken = '1' then
        if beat = BEATS - 1 then
          beat <= 0;
        else
          beat <= beat + 1;
        end if;
      end if;
      if mode = PASS then
        if taken = '1' and beat = BEATS - 1 and s_tlast = '0' and not BATCH then
          mode <= DROP;  -- late tlast: drop up to and including the next one
        elsif taken = '1' and beat /= BEATS - 1 and s_tlast = '1' then
          mode <= PAD;   -- early tlast: complete the image with zeros
        end if;
      elsif mode = PAD then
        if taken = '1' and beat = BEATS - 1 then
          mode <= PASS;
        end if;
      elsif s_tvalid = '1' and s_tlast = '1' then  -- DROP
        mode <= PASS;
      end if;
      if rst = '1' then
        mode <= PASS;
        beat <= 0;
      end if;
    end if;
  end process p_frame;
end architecture rtl;

-- result_fifo: a small synchronous first-word-fall-through FIFO with valid/ready on both
-- sides and its occupancy. The AXI4-Stream top keeps finished results here while the
-- consumer stalls (m_axis_tready low), and the tlast flags of images still in flight.
-- A push into a full FIFO is not a transfer (in_ready is '0'); a push and a pop in the
-- same clock are both taken when the FIFO is neither empty nor full. DEPTH is a bound,
-- not a power of two: any DEPTH >= 1 works.
-- MUST_TAKE is for a producer that cannot wait (the network's done strobe): there an
-- in_valid while full would be a lost entry, so in simulation it is an assertion failure
-- instead of a silent drop. Synthesis sees no assertion (translate_off).
library ieee;
use ieee.std_logic_1164.all;

entity result_fifo is
  generic (
    WIDTH     : positive := 8;     -- bits per entry
    DEPTH     : positive := 4;     -- entries
    MUST_TAKE : boolean  := false  -- the producer ignores in_ready: in_valid when full fails
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    in_valid  : in  std_logic;
    in_ready  : out std_logic;
    in_data   : in  std_logic_vector(WIDTH - 1 downto 0);
    out_valid : out std_logic;
    out_ready : in  std_logic;
    out_data  : out std_logic_vector(WIDTH - 1 downto 0);
    count     : out natural range 0 to DEPTH
  );
end entity result_fifo;

architecture rtl of result_fifo is
  type mem_t is array (0 to DEPTH - 1) of std_logic_vector(WIDTH - 1 downto 0);
  signal mem   : mem_t := (others => (others => '0'));
  signal rd    : natural range 0 to DEPTH - 1 := 0;
  signal wr    : natural range 0 to DEPTH - 1 := 0;
  signal level : natural range 0 to DEPTH := 0;
  signal full, empty : std_logic;
begin
  full      <= '1' when level = DEPTH else '0';
  empty     <= '1' when level = 0 else '0';
  in_ready  <= not full;
  out_valid <= not empty;
  out_data  <= mem(rd);
  count     <= level;

  p_fifo : process (clk)
    variable push, pop : boolean;
  begin
    if rising_edge(clk) then
      push := in_valid = '1' and full = '0';
      pop  := out_ready = '1' and empty = '0';
      -- pragma translate_off
      -- the first guards this unit's own push logic, the second the producer (MUST_TAKE)
      assert rst = '1' or not (push and full = '1')
        report "result_fifo: push into a full FIFO" severity failure;
      assert rst = '1' or not (MUST_TAKE and in_valid = '1' and full = '1')
        report "result_fifo: in_valid while full and MUST_TAKE: an entry is lost"
        severity failure;
      -- pragma translate_on
      if push then
        mem(wr) <= in_data;
        wr      <= 0 when wr = DEPTH - 1 else wr + 1;
      end if;
      if pop then
        rd <= 0 when rd = DEPTH - 1 else rd + 1;
      end if;
      if push and not pop then
        level <= level + 1;
      elsif pop and not push then
        level <= level - 1;
      end if;
      if rst = '1' then
        rd    <= 0;
        wr    <= 0;
        level <= 0;
      end if;
    end if;
  end process p_fifo;
end architecture rtl;

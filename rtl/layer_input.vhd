-- layer_input: input stage of mlp_layer. Takes an image's activations, P per beat, and
-- issues them to the MAC array once per fold of PE neurons, together with the weight-ROM
-- address of that beat.
--
-- A layer of N_OUT neurons computed PE at a time has FOLDS = ceil(N_OUT/PE) folds of
-- BEATS = ceil(N_IN/P) beats; beat j of fold f reads ROM address f*BEATS + j. Fold 0
-- streams straight from in_* (no added latency) and, when FOLDS > 1, writes each beat
-- into a small RAM of BEATS words; folds 1 .. FOLDS-1 replay the beats from that RAM at
-- one per clock while in_ready is '0'. With FOLDS = 1 there is no RAM (today's layer).
--
-- rom_addr and rom_en are registers, loaded when a beat is issued: the ROM reads at the
-- next edge, and the beat is registered twice here, so that x_* two clocks after the
-- issue is aligned with the ROM word (rom_data) of its address. (The address and the
-- enable go to every block RAM of the ROM, across the chip: on mlp256 at PE = 64 a
-- combinational read enable into 118 block RAMs was the critical path.)
--
-- rom_en is the ROM's read enable: '1' only for a beat issued at the last edge that may
-- need its weights. A streamed beat whose inputs are all zero leaves the ROM word as it was
-- (mac_array enables no operand register for an all-zero beat, so it never reads that
-- word; most MNIST pixels are 0): block RAMs have the enable for free, and simulators
-- spare a PE x P x W-bit word update per clock. Replayed beats (folds 1 ..) always read:
-- their data comes out of the replay RAM only with the ROM word.
--
-- A beat that completes a fold (j = BEATS-1) produces a result that the result stage
-- (acc_serializer) must take: it is held back while fin_block is '1' (the previous
-- image's results still wait for the holding register) and for GUARD clocks after the
-- previous fold-completing beat, the clocks until that result shows up in fin_block.
-- GUARD only costs clocks when BEATS <= GUARD (tiny layers).
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity layer_input is
  generic (
    N_IN      : positive := 784;  -- inputs per image
    P         : positive := 1;    -- inputs per beat
    A_BITS    : positive := 8;    -- unsigned activation width
    FOLDS     : positive := 1;    -- passes over the image (ceil(N_OUT/PE))
    FOLD_BITS : positive := 1;    -- width of x_fold
    ADDR_BITS : positive := 10;   -- ROM address width, 2**ADDR_BITS >= FOLDS*ceil(N_IN/P)
    GUARD     : natural  := 8     -- clocks between two fold-completing beats, at least
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    in_valid  : in  std_logic;
    in_ready  : out std_logic;
    in_data   : in  std_logic_vector(P * A_BITS - 1 downto 0);
    fin_block : in  std_logic;  -- '1': the result stage cannot take a completed fold
    -- registers: the address and read enable of the beat issued at the last edge
    rom_addr  : out std_logic_vector(ADDR_BITS - 1 downto 0) := (others => '0');
    rom_en    : out std_logic := '0';
    -- the beat, two clocks after its issue (aligned with the ROM word)
    -- registers with initial values, like every register here: no metavalue reaches the
    -- MAC's conversions before the first beat
    x_valid   : out std_logic := '0';
    x_first   : out std_logic := '0';  -- beat 0 of a fold
    x_last    : out std_logic := '0';  -- beat BEATS-1 of a fold
    x_fold    : out std_logic_vector(FOLD_BITS - 1 downto 0) := (others => '0');
    x_data    : out std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0')
  );
end entity layer_input;

architecture rtl of layer_input is
  constant BEATS : positive := (N_IN + P - 1) / P;

  signal beat      : natural range 0 to BEATS - 1 := 0;
  signal fold      : natural range 0 to FOLDS - 1 := 0;
  signal addr      : natural range 0 to FOLDS * BEATS - 1 := 0;
  signal guard_cnt : natural range 0 to GUARD := 0;
  -- registered decodes of the counters, so that the issue decision is two LUT levels
  -- (it enables every register of the stage; decoding counters there was the critical path)
  signal at_first  : boolean := true;   -- beat = 0
  signal at_last   : boolean := BEATS = 1;  -- beat = BEATS-1
  signal fold0     : boolean := true;   -- fold = 0
  signal guard_ok  : boolean := true;   -- guard_cnt = 0
  signal can       : boolean;  -- the current beat may be issued (result stage permitting)
  signal take      : boolean;  -- the current beat is issued at the next edge
  signal x_str     : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');
  signal x_buf     : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');
  signal replay    : boolean := false;  -- the registered beat comes from the RAM
  -- the beat, one clock after its issue (the first of its two registers)
  signal x1_valid, x1_first, x1_last : std_logic := '0';
  signal x1_fold   : std_logic_vector(FOLD_BITS - 1 downto 0) := (others => '0');
begin
  assert 2**ADDR_BITS >= FOLDS * BEATS
    report "layer_input: ADDR_BITS too small for FOLDS*ceil(N_IN/P)" severity failure;
  assert 2**FOLD_BITS >= FOLDS
    report "layer_input: FOLD_BITS too small for FOLDS" severity failure;

  can      <= not at_last or (fin_block = '0' and guard_ok);
  take     <= can and (not fold0 or in_valid = '1');
  in_ready <= '1' when fold0 and can else '0';

  p_seq : process (clk)
  begin
    if rising_edge(clk) then
      -- (first, last, fold and data only matter with valid: assigned only then, which
      -- spares the simulator signal updates every clock)
      if take then
        rom_addr <= std_logic_vector(to_unsigned(addr, ADDR_BITS));
        x1_first <= '1' when at_first else '0';
        x1_last  <= '1' when at_last else '0';
      end if;
      rom_en   <= '1' when take and (not fold0 or in_data /= (in_data'range => '0')) else '0';
      x1_valid <= '1' when take else '0';
      -- the fold is constant through its beats: converted once, at its first beat
      -- (a conversion every clock was a visible GHDL cost)
      if take and at_first then
        x1_fold <= std_logic_vector(to_unsigned(fold, FOLD_BITS));
      end if;
      -- second register of the beat, beside the ROM's read
      x_valid <= x1_valid;
      if x1_valid = '1' then
        x_first <= x1_first;
        x_last  <= x1_last;
        x_fold  <= x1_fold;
        if replay then
          x_data <= x_buf;
        else
          x_data <= x_str;
        end if;
      end if;
      replay  <= not fold0;
      if guard_cnt /= 0 then
        guard_cnt <= guard_cnt - 1;
        guard_ok  <= guard_cnt = 1;
      end if;
      if take then
        if fold0 then
          x_str <= in_data;
        end if;
        if at_last then
          beat      <= 0;
          at_first  <= true;
          at_last   <= BEATS = 1;
          guard_cnt <= GUARD;
          guard_ok  <= GUARD = 0;
          if fold = FOLDS - 1 then
            fold  <= 0;
            fold0 <= true;
            addr  <= 0;
          else
            fold  <= fold + 1;
            fold0 <= false;
            addr  <= addr + 1;
          end if;
        else
          beat     <= beat + 1;
          at_first <= false;
          at_last  <= beat = BEATS - 2;
          addr     <= addr + 1;
        end if;
      end if;
      if rst = '1' then
        beat      <= 0;
        at_first  <= true;
        at_last   <= BEATS = 1;
        fold      <= 0;
        fold0     <= true;
        addr      <= 0;
        guard_cnt <= 0;
        guard_ok  <= true;
        rom_en    <= '0';
        x1_valid  <= '0';
        x_valid   <= '0';
      end if;
    end if;
  end process p_seq;

  -- Folds 1 .. FOLDS-1 replay the image from here (simple dual-port RAM, read-first).
  g_buf : if FOLDS > 1 generate
    type ram_t is array (0 to BEATS - 1) of std_logic_vector(P * A_BITS - 1 downto 0);
    signal ram : ram_t;
  begin
    p_ram : process (clk)
    begin
      if rising_edge(clk) then
        if take and fold0 then
          ram(beat) <= in_data;
        end if;
        x_buf <= ram(beat);
      end if;
    end process p_ram;
  end generate g_buf;
  g_nobuf : if FOLDS = 1 generate
    x_buf <= (others => '0');  -- never selected (no replay): driven, not left floating
  end generate g_nobuf;
end architecture rtl;

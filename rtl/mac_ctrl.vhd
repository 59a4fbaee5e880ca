-- mac_ctrl: the control pipeline of mac_array, the one place that follows a beat from
-- its arrival to its accumulator update. The data registers live in mac_mult, mac_tree
-- and mac_acc; they take their enables from here.
--
--   stage -1   the beat registered as it arrives (x_valid, x_first, x_last, x_fold, x_data)
--   stage 0    registered again: x0 (its inputs; loaded by valid beats only) and
--              op_en = '1' when it is valid with a non-zero input: it loads stage 1
--   stage s    en(s) = '1' when stage s (1 .. STAGES-1) holds such a beat: the data
--              registers of stage s+1 load from stage s
--   STAGES     the addends; acc_en, acc_first, acc_last, acc_fold: the accumulators take
--              the beat at the next edge (a zero beat only when it starts or ends a fold)
--
-- Zero skip: a beat whose inputs are all zero adds nothing, so it enables no operand,
-- product, tree or accumulator register (only its control bits move). Most MNIST pixels
-- and many ReLU outputs are zero: exact, several times faster to simulate, less power.
-- Its addends must then be 0: clr = '1' when a zero beat enters stage STAGES while the
-- addend register may hold a non-zero value (once per run of zero beats), and that
-- register loads 0 (a synchronous clear: no multiplexer after the accumulators' adders,
-- which was on the critical path).
--
-- x_fold is read at a fold's first beat (x_first) and must stay the same through its
-- beats: it is latched there only.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity mac_ctrl is
  generic (
    P         : positive := 1;   -- inputs per beat
    A_BITS    : positive := 8;   -- unsigned input width
    FOLD_BITS : positive := 1;
    STAGES    : positive := 4    -- the stage of the addends (mac_array: MS + ceil(log2 P))
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    x_valid   : in  std_logic;
    x_first   : in  std_logic;
    x_last    : in  std_logic;
    x_fold    : in  std_logic_vector(FOLD_BITS - 1 downto 0);
    x_data    : in  std_logic_vector(P * A_BITS - 1 downto 0);
    x0        : out std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');
    op_en     : out std_logic;
    en        : out std_logic_vector(1 to STAGES - 1) := (others => '0');
    clr       : out std_logic;
    acc_en    : out std_logic := '0';
    acc_first : out std_logic := '0';
    acc_last  : out std_logic := '0';
    acc_fold  : out std_logic_vector(FOLD_BITS - 1 downto 0) := (others => '0')
  );
end entity mac_ctrl;

architecture rtl of mac_ctrl is
  constant S : positive := STAGES;

  type beat_t is record
    valid, live, first, last : boolean;  -- live: valid with a non-zero input
    fold : std_logic_vector(FOLD_BITS - 1 downto 0);
  end record;
  type beats_t is array (0 to S) of beat_t;
  constant IDLE : beat_t := (false, false, false, false, (others => '0'));
  -- the zero test as a vector compare: numeric_std's unsigned(x0) /= 0 every clock was a
  -- visible cost in GHDL (a metavalue in x0 still warns, in the input's conversion)
  constant X_ZERO : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');

  signal c0_valid : std_logic := '0';  -- stage 0 holds a valid beat
  signal v_last   : std_logic := '0';  -- stage S-1 holds a valid beat
  signal add0     : std_logic := '1';  -- the addends (stage S) are all 0
begin
  assert S >= 2 report "mac_ctrl: STAGES must be >= 2" severity failure;

  -- the zero test reads the stage-0 register, not x_data: x_data may come straight from
  -- a block RAM (the input stage's replay buffer)
  op_en <= '1' when c0_valid = '1' and x0 /= X_ZERO else '0';
  clr   <= '1' when v_last = '1' and en(S - 1) = '0' and add0 = '0' else '0';

  -- Why variables: read before they are written (stages in reverse order) they are the
  -- same flip-flops as signals, and GHDL updates no signal for them; only what the data
  -- registers read is a signal.
  p_ctrl : process (clk)
    variable xa   : beat_t := IDLE;                                          -- stage -1
    variable xa_d : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');
    variable x0_v : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');
    variable st   : beats_t := (others => IDLE);                             -- 0 .. S
    variable z    : boolean := true;  -- the addends are all 0
  begin
    if rising_edge(clk) then
      -- a zero beat entering stage S clears the addends (clr), a live one loads them
      if st(S - 1).valid then
        z := not st(S - 1).live;
      end if;
      for k in S downto 2 loop
        st(k) := st(k - 1);
      end loop;
      st(1)      := st(0);
      st(1).live := st(0).valid and x0_v /= X_ZERO;
      st(0)      := xa;
      if xa.valid then
        x0_v := xa_d;
        x0   <= xa_d;
      end if;
      -- field by field: an aggregate with a literal fold of 0 (one fold: a 0-bit field)
      -- became "0'b" in GHDL 2.0's Verilog, which yosys rejects
      xa.valid := x_valid = '1';
      xa.first := x_first = '1';
      xa.last  := x_last = '1';
      -- x_fold is only defined with x_valid, and constant through a fold
      if x_valid = '1' and x_first = '1' then
        xa.fold := x_fold;
      end if;
      xa_d := x_data;
      if rst = '1' then
        xa := IDLE;
        st := (others => IDLE);
        -- "the addends may be non-zero": the first zero beat then clears them. Initial
        -- values of process variables do not survive GHDL's synthesis, so without this
        -- the netlist (and the device after power-up) would start from unknown addends.
        z  := false;
      end if;
      -- the outputs, from the stages as updated (the same flip-flops)
      c0_valid <= '1' when st(0).valid else '0';
      for k in 1 to S - 1 loop
        en(k) <= '1' when st(k).live else '0';
      end loop;
      v_last    <= '1' when st(S - 1).valid else '0';
      add0      <= '1' when z else '0';
      acc_en    <= '1' when st(S).valid and (st(S).live or st(S).first or st(S).last) else '0';
      acc_first <= '1' when st(S).first else '0';
      acc_last  <= '1' when st(S).last else '0';
      acc_fold  <= st(S).fold;
    end if;
  end process p_ctrl;
end architecture rtl;

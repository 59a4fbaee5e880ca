-- mac_ctrl: the control pipeline of mac_array, the one place that follows a beat from
-- its arrival to its accumulator update. The data registers live in mac_mult, mac_tree
-- and mac_acc; they take their enables from here.
--
--   stage -1   the beat registered as it arrives (x_valid, x_first, x_last, x_fold, x_data)
--   stage 0    registered again; x0 = its inputs
--   stage s    en(s) = '1' when stage s (0 .. STAGES-1) holds a valid beat with a
--              non-zero input: the data registers of stage s+1 load from stage s
--              (en(0): the operands from x0 and the ROM word)
--   STAGES     the addends; acc_en: the accumulators take the beat at the next edge
--              with acc_first, acc_last and acc_fold
--
-- Zero skip: a beat whose inputs are all zero adds nothing, so it enables no operand,
-- product, tree or accumulator register (only its control bits move; x0 keeps the last
-- non-zero inputs, which only such a beat reads). Most MNIST pixels and many ReLU
-- outputs are zero: exact, several times faster to simulate, less power. A zero beat
-- that starts or ends a fold still goes through the accumulators, with addends of 0:
-- clr = '1' when one enters stage STAGES while the addend register may hold a live
-- beat's sums, and that register loads 0 (a synchronous clear: no multiplexer after the
-- accumulators' adders, which was on the critical path).
--
-- Every output is a register (the enables fan out to every data register), and the ones
-- only the accumulators read move only with acc_en (fewer signal updates in GHDL).
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
    en        : out std_logic_vector(0 to STAGES - 1) := (others => '0');
    clr       : out std_logic := '0';
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
  type beats_t is array (0 to S - 1) of beat_t;
  constant IDLE : beat_t := (false, false, false, false, (others => '0'));
  -- the zero test as a vector compare: numeric_std's unsigned(x) /= 0 every clock was a
  -- visible cost in GHDL (a metavalue still warns, in the input's conversion)
  constant X_ZERO : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');
begin
  assert S >= 2 report "mac_ctrl: STAGES must be >= 2" severity failure;

  -- Why variables: read before they are written (stages in reverse order) they are the
  -- same flip-flops as signals, and GHDL updates no signal for them.
  p_ctrl : process (clk)
    variable xa   : beat_t := IDLE;                                          -- stage -1
    variable xa_d : std_logic_vector(P * A_BITS - 1 downto 0) := (others => '0');
    variable st   : beats_t := (others => IDLE);                          -- 0 .. S-1
    variable z    : boolean := true;  -- the addends (stage S) are 0
    variable acc  : boolean;
  begin
    if rising_edge(clk) then
      -- stage S-1 -> S: the accumulators' controls; the addends after this edge
      acc := st(S - 1).valid and (st(S - 1).live or st(S - 1).first or st(S - 1).last);
      acc_en <= '1' when acc else '0';
      if acc then
        acc_first <= '1' when st(S - 1).first else '0';
        acc_last  <= '1' when st(S - 1).last else '0';
        acc_fold  <= st(S - 1).fold;
      end if;
      if st(S - 1).live then
        z := false;
      elsif clr = '1' then
        z := true;
      end if;
      for k in S - 1 downto 1 loop
        st(k) := st(k - 1);
      end loop;
      -- stage -1 -> 0; the zero test reads the stage -1 register, not x_data: x_data may
      -- come straight from a block RAM (the input stage's replay buffer)
      st(0)      := xa;
      st(0).live := xa.valid and xa_d /= X_ZERO;
      if st(0).live then
        x0 <= xa_d;
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
        acc_en <= '0';
        -- "the addends may be non-zero": the first zero beat that reaches the
        -- accumulators clears them. Initial values of process variables do not survive
        -- GHDL's synthesis, so without this the netlist (and the device after power-up)
        -- would start from unknown addends.
        z := false;
      end if;
      for k in 0 to S - 1 loop
        en(k) <= '1' when st(k).live else '0';
      end loop;
      -- a zero beat that the accumulators will take enters stage S at the next edge
      clr <= '1' when st(S - 1).valid and not st(S - 1).live and
                      (st(S - 1).first or st(S - 1).last) and not z else '0';
    end if;
  end process p_ctrl;
end architecture rtl;

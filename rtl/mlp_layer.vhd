-- mlp_layer: one fully connected layer, N_OUT neurons in parallel, one input per clock.
--
-- All neurons share one weight-ROM address: while input i is consumed, the ROM word
-- at address i holds w(n, i) for every neuron n at bits [(n+1)*W_BITS-1 : n*W_BITS].
-- The ROM reads synchronously (block RAM), so the input is delayed one clock to meet
-- its weights. After N_IN inputs the accumulators are final: they are published on
-- acc_flat with a one-clock acc_valid strobe and then streamed out on out_* one per
-- clock, neuron 0 first, to the requantizer (hidden layer) or argmax (last layer).
-- Arithmetic: docs/numerics.md, section 3.
--
-- Why integers: the MAC array is written as VHDL integer arithmetic in one clocked
-- process. It synthesizes to the same multipliers and adders as numeric_std, and
-- simulates about five times faster in GHDL (see docs/numerics.md, "Simulation").
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity mlp_layer is
  generic (
    N_IN      : positive := 784;  -- inputs per image
    N_OUT     : positive := 256;  -- neurons
    W_BITS    : positive := 8;    -- signed weight width
    A_BITS    : positive := 8;    -- unsigned input activation width
    ACC_BITS  : positive := 24;   -- signed accumulator width (from gen/quant.py)
    ADDR_BITS : positive := 10;   -- ROM address width, 2**ADDR_BITS >= N_IN
    -- Test only (negative tests prove the benches catch it): skew the ROM address.
    FAULT_ADDR_SKEW : natural := 0
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    -- input activations, unsigned, one per clock
    in_valid  : in  std_logic;
    in_ready  : out std_logic;
    in_data   : in  std_logic_vector(A_BITS - 1 downto 0);
    -- weight ROM, shared address, registered read
    rom_addr  : out std_logic_vector(ADDR_BITS - 1 downto 0);
    rom_data  : in  std_logic_vector(N_OUT * W_BITS - 1 downto 0);
    -- biases, neuron n at bits [(n+1)*ACC_BITS-1 : n*ACC_BITS] (a constant in practice)
    bias      : in  std_logic_vector(N_OUT * ACC_BITS - 1 downto 0);
    -- every accumulator, valid in the clock where acc_valid is '1'
    acc_flat  : out std_logic_vector(N_OUT * ACC_BITS - 1 downto 0);
    acc_valid : out std_logic;
    -- accumulators one per clock, neuron 0 first
    out_valid : out std_logic;
    out_ready : in  std_logic;
    out_data  : out std_logic_vector(ACC_BITS - 1 downto 0);
    out_last  : out std_logic
  );
end entity mlp_layer;

architecture rtl of mlp_layer is
  type state_t is (S_ACCUM, S_FLUSH, S_EMIT);
  signal state     : state_t := S_ACCUM;
  signal count     : natural range 0 to N_IN - 1 := 0;  -- inputs taken so far
  signal x_d       : natural range 0 to 2**A_BITS - 1 := 0;  -- input, aligned with the ROM
  signal x_d_valid : boolean := false;
  signal emit_idx  : natural range 0 to N_OUT - 1 := 0;
  signal out_v     : std_logic := '0';
begin
  assert ACC_BITS <= 31
    report "mlp_layer: ACC_BITS=" & integer'image(ACC_BITS) &
           " exceeds the 31 bits of the integer datapath"
    severity failure;
  assert 2**ADDR_BITS >= N_IN
    report "mlp_layer: ADDR_BITS too small for N_IN" severity failure;
  assert W_BITS + A_BITS <= 31
    report "mlp_layer: one product of W_BITS x A_BITS bits must fit the integer datapath"
    severity failure;

  in_ready  <= '1' when state = S_ACCUM else '0';
  rom_addr  <= std_logic_vector(to_unsigned(count + FAULT_ADDR_SKEW, ADDR_BITS + 1)(ADDR_BITS - 1 downto 0));
  out_valid <= out_v;

  p_main : process (clk)
    variable acc   : integer_vector(0 to N_OUT - 1);
    variable flat  : std_logic_vector(N_OUT * ACC_BITS - 1 downto 0);
    variable w     : integer;
    procedure load_bias is
    begin
      for n in 0 to N_OUT - 1 loop
        acc(n) := to_integer(signed(bias((n + 1) * ACC_BITS - 1 downto n * ACC_BITS)));
      end loop;
    end procedure;
  begin
    if rising_edge(clk) then
      acc_valid <= '0';
      -- MAC: the ROM word read last clock belongs to x_d. A zero input adds nothing, so
      -- it does not enable the accumulators: most MNIST pixels and many ReLU outputs
      -- are 0, which makes simulation several times faster (and saves power).
      if x_d_valid and x_d /= 0 then
        for n in 0 to N_OUT - 1 loop
          w := to_integer(signed(rom_data((n + 1) * W_BITS - 1 downto n * W_BITS)));
          acc(n) := acc(n) + w * x_d;
        end loop;
      end if;
      x_d_valid <= false;

      case state is
        when S_ACCUM =>
          if in_valid = '1' then
            x_d       <= to_integer(unsigned(in_data));
            x_d_valid <= true;
            if count = N_IN - 1 then
              count <= 0;
              state <= S_FLUSH;
            else
              count <= count + 1;
            end if;
          end if;
        when S_FLUSH =>  -- the last product was added above: publish
          for n in 0 to N_OUT - 1 loop
            flat((n + 1) * ACC_BITS - 1 downto n * ACC_BITS) :=
              std_logic_vector(to_signed(acc(n), ACC_BITS));
          end loop;
          acc_flat  <= flat;
          acc_valid <= '1';
          out_data  <= std_logic_vector(to_signed(acc(0), ACC_BITS));
          out_last  <= '1' when N_OUT = 1 else '0';
          out_v     <= '1';
          emit_idx  <= 0;
          state     <= S_EMIT;
        when S_EMIT =>
          if out_ready = '1' then
            if emit_idx = N_OUT - 1 then
              out_v <= '0';
              load_bias;
              state <= S_ACCUM;
            else
              emit_idx <= emit_idx + 1;
              out_data <= std_logic_vector(to_signed(acc(emit_idx + 1), ACC_BITS));
              out_last <= '1' when emit_idx + 1 = N_OUT - 1 else '0';
            end if;
          end if;
      end case;

      if rst = '1' then
        state     <= S_ACCUM;
        count     <= 0;
        x_d_valid <= false;
        out_v     <= '0';
        acc_valid <= '0';
        load_bias;
      end if;
    end if;
  end process p_main;
end architecture rtl;

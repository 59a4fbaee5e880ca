-- mlp_layer: one fully connected layer, N_OUT neurons in parallel, P inputs per clock.
--
-- All neurons share one weight-ROM address: beat j carries inputs j*P .. j*P+P-1, and
-- the ROM word at address j holds w(n, j*P+p) of neuron n, lane p at bits
-- [(n*P+p+1)*W_BITS-1 : (n*P+p)*W_BITS] (P = 1: neuron n at [(n+1)*W-1 : n*W]). Weights
-- past N_IN are zero, so a P that does not divide N_IN needs no special case. The ROM
-- reads synchronously (block RAM), so the input is delayed one clock to meet its weights.
--
-- After ceil(N_IN/P) beats the accumulators are final: they are copied into a holding
-- register (published on acc_flat with a one-clock acc_valid strobe) and the
-- accumulators restart from the biases at once, so the next image's beats are taken
-- while this one's results stream out on out_* (Q per clock, neuron 0 first) to the
-- requantizer (hidden layer) or argmax (last layer). Inputs stall only when an image
-- is finished before the previous one has left the holding register.
-- Arithmetic: docs/numerics.md, section 3.
--
-- Why integers: the MAC array is written as VHDL integer arithmetic in one clocked
-- process. It synthesizes to the same multipliers and adders as numeric_std and
-- simulates several times faster in GHDL. Accumulators wider than 31 bits (e.g. int16)
-- do not fit VHDL integers: then the same process uses numeric_std signed arithmetic.
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
    ACC_BITS_MIN : natural := 0;  -- what this layer's weights and biases need (generator)
    P         : positive := 1;    -- inputs per clock (lanes of in_data and of the ROM word)
    Q         : positive := 1;    -- accumulators per clock on out_data
    ADDR_BITS : positive := 10    -- ROM address width, 2**ADDR_BITS >= ceil(N_IN/P)
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    -- input activations, unsigned, P per beat, input j*P+p in lane p
    in_valid  : in  std_logic;
    in_ready  : out std_logic;
    in_data   : in  std_logic_vector(P * A_BITS - 1 downto 0);
    -- weight ROM, shared address, registered read
    rom_addr  : out std_logic_vector(ADDR_BITS - 1 downto 0);
    rom_data  : in  std_logic_vector(N_OUT * P * W_BITS - 1 downto 0);
    -- biases, neuron n at bits [(n+1)*ACC_BITS-1 : n*ACC_BITS] (a constant in practice)
    bias      : in  std_logic_vector(N_OUT * ACC_BITS - 1 downto 0);
    -- every accumulator, valid in the clock where acc_valid is '1'
    acc_flat  : out std_logic_vector(N_OUT * ACC_BITS - 1 downto 0);
    acc_valid : out std_logic;
    -- accumulators, Q per beat, neuron i*Q+q in lane q (lanes past N_OUT are 0)
    out_valid : out std_logic;
    out_ready : in  std_logic;
    out_data  : out std_logic_vector(Q * ACC_BITS - 1 downto 0);
    out_last  : out std_logic
  );
end entity mlp_layer;

architecture rtl of mlp_layer is
  constant BEATS     : positive := (N_IN + P - 1) / P;
  constant OUT_BEATS : positive := (N_OUT + Q - 1) / Q;
  constant HELD_BITS : positive := OUT_BEATS * Q * ACC_BITS;
  -- integer datapath when every value fits 31 bits, else numeric_std (wide formats)
  constant USE_INT   : boolean  := ACC_BITS <= 31 and W_BITS + A_BITS <= 30;
  -- numeric_std path: a product has W_BITS + A_BITS + 1 bits and may be wider than the
  -- accumulator (a large product offset by a bias of the other sign), so the sum is
  -- formed at SUM_BITS and only the result, a partial sum that fits ACC_BITS
  -- (docs/numerics.md, section 3), is narrowed.
  constant SUM_BITS  : positive := maximum(ACC_BITS, W_BITS + A_BITS + 1) + 1;

  type lanes_t is array (0 to P - 1) of natural range 0 to 2**A_BITS - 1;

  -- counters have one spare value: synthesis checks count + 1 statically, also for 1 beat
  signal count     : natural range 0 to BEATS := 0;       -- beats taken of this image
  signal x_d       : lanes_t := (others => 0);             -- beat aligned with its ROM word
  signal x_d_valid : boolean := false;
  signal x_d_last  : boolean := false;
  signal pending   : boolean := false;  -- accumulators final, holding register still busy
  signal emitting  : boolean := false;  -- holding register streams out
  signal emit_idx  : natural range 0 to OUT_BEATS := 0;
  signal held      : std_logic_vector(HELD_BITS - 1 downto 0) := (others => '0');
begin
  assert ACC_BITS >= ACC_BITS_MIN
    report "mlp_layer: ACC_BITS=" & integer'image(ACC_BITS) & " is too narrow: the weights " &
           "need " & integer'image(ACC_BITS_MIN) & " bits (docs/numerics.md, section 3)"
    severity failure;
  assert 2**ADDR_BITS >= BEATS
    report "mlp_layer: ADDR_BITS too small for ceil(N_IN/P)" severity failure;
  assert ACC_BITS >= W_BITS + 1 and A_BITS <= 30
    report "mlp_layer: ACC_BITS must hold one product; A_BITS must be <= 30"
    severity failure;

  -- Stall a beat whose product could reach the accumulators before they are handed over.
  in_ready  <= '0' when pending or (x_d_valid and x_d_last and emitting) else '1';
  rom_addr  <= std_logic_vector(to_unsigned(count, ADDR_BITS + 1)(ADDR_BITS - 1 downto 0));
  out_valid <= '1' when emitting else '0';
  out_data  <= held((emit_idx + 1) * Q * ACC_BITS - 1 downto emit_idx * Q * ACC_BITS);
  out_last  <= '1' when emit_idx >= OUT_BEATS - 1 else '0';
  acc_flat  <= held(N_OUT * ACC_BITS - 1 downto 0);

  p_main : process (clk)
    type acc_sgn_t is array (0 to N_OUT - 1) of signed(ACC_BITS - 1 downto 0);
    variable acc  : integer_vector(0 to N_OUT - 1);  -- USE_INT
    variable accs : acc_sgn_t;                       -- not USE_INT
    variable w    : integer;
    variable ws   : signed(W_BITS - 1 downto 0);
    variable xs   : signed(A_BITS downto 0);
    variable busy : boolean;  -- holding register still in use after this clock
    variable fin  : boolean;  -- accumulators final after this clock
    variable h    : std_logic_vector(HELD_BITS - 1 downto 0);
    procedure load_bias is
    begin
      for n in 0 to N_OUT - 1 loop
        if USE_INT then
          acc(n) := to_integer(signed(bias((n + 1) * ACC_BITS - 1 downto n * ACC_BITS)));
        else
          accs(n) := signed(bias((n + 1) * ACC_BITS - 1 downto n * ACC_BITS));
        end if;
      end loop;
    end procedure;
  begin
    if rising_edge(clk) then
      acc_valid <= '0';

      -- emitter: one beat of Q accumulators per accepted transfer
      busy := emitting;
      if emitting and out_ready = '1' then
        if emit_idx >= OUT_BEATS - 1 then
          busy := false;
        else
          emit_idx <= emit_idx + 1;
        end if;
      end if;

      -- MAC: the ROM word read last clock belongs to x_d. A zero input adds nothing, so
      -- it does not enable the accumulators: most MNIST pixels and many ReLU outputs
      -- are 0, which makes simulation several times faster (and saves power).
      if x_d_valid then
        for p_i in 0 to P - 1 loop
          if x_d(p_i) /= 0 and USE_INT then
            for n in 0 to N_OUT - 1 loop
              w := to_integer(signed(
                     rom_data((n * P + p_i + 1) * W_BITS - 1 downto (n * P + p_i) * W_BITS)));
              acc(n) := acc(n) + w * x_d(p_i);
            end loop;
          elsif x_d(p_i) /= 0 then
            xs := signed('0' & to_unsigned(x_d(p_i), A_BITS));
            for n in 0 to N_OUT - 1 loop
              ws := signed(
                      rom_data((n * P + p_i + 1) * W_BITS - 1 downto (n * P + p_i) * W_BITS));
              accs(n) := resize(resize(accs(n), SUM_BITS) + ws * xs, ACC_BITS);
            end loop;
          end if;
        end loop;
      end if;
      fin := pending or (x_d_valid and x_d_last);

      -- hand-over: final accumulators to the holding register, restart from the biases
      if fin and not busy then
        h := (others => '0');
        for n in 0 to N_OUT - 1 loop
          if USE_INT then
            h((n + 1) * ACC_BITS - 1 downto n * ACC_BITS) :=
              std_logic_vector(to_signed(acc(n), ACC_BITS));
          else
            h((n + 1) * ACC_BITS - 1 downto n * ACC_BITS) := std_logic_vector(accs(n));
          end if;
        end loop;
        held      <= h;
        acc_valid <= '1';
        emit_idx  <= 0;
        busy      := true;
        fin       := false;
        load_bias;
      end if;
      emitting <= busy;
      pending  <= fin;

      -- input: register the beat so that it meets its ROM word next clock
      x_d_valid <= false;
      if in_valid = '1' and not pending and not (x_d_valid and x_d_last and emitting) then
        for p_i in 0 to P - 1 loop
          x_d(p_i) <= to_integer(unsigned(in_data((p_i + 1) * A_BITS - 1 downto p_i * A_BITS)));
        end loop;
        x_d_valid <= true;
        x_d_last  <= count >= BEATS - 1;
        count     <= 0 when count >= BEATS - 1 else count + 1;
      end if;

      if rst = '1' then
        count     <= 0;
        x_d_valid <= false;
        x_d_last  <= false;
        pending   <= false;
        emitting  <= false;
        emit_idx  <= 0;
        acc_valid <= '0';
        load_bias;
      end if;
    end if;
  end process p_main;
end architecture rtl;
